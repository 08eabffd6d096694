//! Host-side requests served by a stream's owner: the ranked queue, host actions, queue-change
//! pushes and catalogue calls, each sent to the owner of the stream's partition from any instance.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;

use super::wire::{Input, Reply};
use super::{Node, partition_of};
use crate::stream::AnswerText;

/// A host request answered by a stream's owner.
pub enum HostRequest {
    /// `PUT …/catalog`, validated.
    Catalog(crate::catalog::CatalogSpec),
    /// `PUT …/product`.
    Product(Option<String>),
    /// `GET …/catalog`.
    GetCatalog,
}

impl Node {
    /// ── cluster hook (host queue) ── The stream's ranked questions, from its owner, as JSON.
    pub async fn list(self: &Arc<Self>, stream: &str) -> Result<serde_json::Value, String> {
        let p = partition_of(stream, self.config.partitions.get());
        self.ask_json(p, &Input::List { stream: stream.into() }).await
    }

    /// ── cluster hook (host action) ── Applies a host action at the stream's owner, journaled
    /// first; the question acted on, `null` when unknown.
    pub async fn act(
        self: &Arc<Self>,
        stream: &str,
        cluster: u32,
        action: &str,
        answer: &AnswerText,
    ) -> Result<serde_json::Value, String> {
        let p = partition_of(stream, self.config.partitions.get());
        let answer = match answer {
            AnswerText::Keep => None,
            AnswerText::Set(s) => Some(s.to_string()),
            AnswerText::Clear => Some(String::new()),
        };
        let input =
            Input::Act { rid: self.request_id(), stream: stream.into(), cluster, action: action.into(), answer };
        self.ask_json(p, &input).await
    }

    /// ── cluster hook (host pushes) ── A version that changes whenever the stream's owner
    /// announces a change of its queue (on `{prefix}.push.P`), for a host screen on any
    /// instance. The subscription ends when the receiver is dropped.
    pub async fn subscribe(&self, stream: &str) -> Result<tokio::sync::watch::Receiver<u64>, String> {
        let p = partition_of(stream, self.config.partitions.get());
        let mut sub = self.client.subscribe(self.push_subject(p)).await.map_err(|e| e.to_string())?;
        let (tx, rx) = tokio::sync::watch::channel(0u64);
        let name = Bytes::from(stream.to_string());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tx.closed() => break,
                    msg = sub.next() => {
                        let Some(msg) = msg else { break };
                        if msg.payload == name {
                            tx.send_modify(|v| *v += 1);
                        }
                    }
                }
            }
            let _ = sub.unsubscribe().await;
        });
        Ok(rx)
    }

    /// ── cluster hook (catalogue, product, catalogue read) ── Sends a request to the owner of
    /// `stream`'s partition: journaled there first when it changes state. The reply's JSON.
    pub async fn call(self: &Arc<Self>, stream: &str, request: HostRequest) -> Result<serde_json::Value, String> {
        let input = match request {
            HostRequest::Catalog(spec) => Input::Catalog { rid: self.request_id(), stream: stream.into(), spec },
            HostRequest::Product(product) => Input::Product { rid: self.request_id(), stream: stream.into(), product },
            HostRequest::GetCatalog => Input::GetCatalog { stream: stream.into() },
        };
        let p = partition_of(stream, self.config.partitions.get());
        self.ask_json(p, &input).await
    }

    /// ── cluster hook (moderator) ── A moderator's request about `stream`, answered by its
    /// owner (journaled there first when it changes state): the JSON answer, or the status and
    /// error the owner refused it with.
    pub(crate) async fn moderate(
        self: &Arc<Self>,
        stream: &str,
        request: crate::server::StreamRequest,
    ) -> Result<Result<serde_json::Value, (u16, String)>, String> {
        let p = partition_of(stream, self.config.partitions.get());
        let input = Input::Moderate { rid: self.request_id(), stream: stream.into(), request };
        match self.ask_reply(p, &input).await? {
            Reply::Json { value } => Ok(Ok(value)),
            Reply::Refused { status, error } => Ok(Err((status, error))),
            Reply::Failed { error } => Err(error),
            Reply::Outs { .. } | Reply::Moved => Err("unexpected reply".into()),
        }
    }

    /// Sends `input` to partition `p`'s owner and waits for its reply, within
    /// `forward_timeout_ms`.
    async fn ask_reply(self: &Arc<Self>, p: u32, input: &Input) -> Result<Reply, String> {
        let payload = serde_json::to_vec(input).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_millis(self.config.forward_timeout_ms.get());
        self.ask(p, None, Bytes::from(payload), deadline).await
    }

    /// Sends `input` to partition `p`'s owner and waits for its JSON answer.
    async fn ask_json(self: &Arc<Self>, p: u32, input: &Input) -> Result<serde_json::Value, String> {
        match self.ask_reply(p, input).await? {
            Reply::Json { value } => Ok(value),
            Reply::Failed { error } | Reply::Refused { error, .. } => Err(error),
            Reply::Outs { .. } | Reply::Moved => Err("unexpected reply".into()),
        }
    }
}
