//! Transactions with librdkafka through the rdkafka crate: commit, abort and fencing
//! (`transactions`), and offsets committed in a transaction (`txn_offsets`).

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use super::{client_config, eq, fail, topic_name, Ctx, R, T};

fn txn_producer(cx: &Ctx, id: &str) -> R<FutureProducer> {
    let p = cx.producer(&[("transactional.id", id)])?;
    p.init_transactions(T)?;
    Ok(p)
}

async fn send(p: &FutureProducer, topic: &str, partition: i32, value: &str) -> R {
    p.send(
        FutureRecord::<(), _>::to(topic)
            .partition(partition)
            .payload(value),
        T,
    )
    .await
    .map_err(|(e, _)| e)?;
    Ok(())
}

/// `partition:value` of every record a consumer with `isolation` reads to the end.
fn read_isolated(cx: &Ctx, topic: &str, partitions: i32, isolation: &str) -> R<Vec<String>> {
    let c: BaseConsumer = client_config()
        .set("bootstrap.servers", &cx.bootstrap)
        .set("group.id", "compat-unused")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation)
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    c.assign(&tpl)?;
    let mut got = Vec::new();
    let mut eof = std::collections::BTreeSet::new();
    let deadline = Instant::now() + T;
    while eof.len() < partitions as usize && Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => got.push((
                m.partition(),
                m.offset(),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            )),
            Some(Err(KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            Some(Err(e)) => return fail(format!("consumer error: {e}")),
            None => {}
        }
    }
    eq(eof.len(), partitions as usize, "partitions read to the end")?;
    got.sort();
    Ok(got
        .into_iter()
        .map(|(p, _, v)| format!("{p}:{v}"))
        .collect())
}

pub(super) async fn transactions(cx: &mut Ctx) -> R<String> {
    let t = topic_name("txn");
    cx.create_topic(&t, 2, &[]).await?;
    let id = format!("compat-rdkafka-{t}");
    let p = txn_producer(cx, &id)?;
    for (tag, commit) in [("c1", true), ("a", false), ("c2", true)] {
        p.begin_transaction()?;
        for part in 0..2 {
            send(&p, &t, part, &format!("{tag}-{part}")).await?;
        }
        if commit {
            p.commit_transaction(T)?;
        } else {
            p.abort_transaction(T)?;
        }
    }
    eq(
        read_isolated(cx, &t, 2, "read_committed")?,
        ["0:c1-0", "0:c2-0", "1:c1-1", "1:c2-1"]
            .map(String::from)
            .to_vec(),
        "read_committed sees the committed transactions only",
    )?;
    eq(
        read_isolated(cx, &t, 2, "read_uncommitted")?.len(),
        6,
        "read_uncommitted sees the aborted records too",
    )?;
    let p2 = txn_producer(cx, &id)?;
    p.begin_transaction()?;
    let zombie = match send(&p, &t, 0, "zombie").await {
        Err(super::Outcome::Fail(e) | super::Outcome::Na(e)) => e,
        Ok(()) => match p.commit_transaction(T) {
            Ok(()) => return fail("the fenced producer committed"),
            Err(e) => e.to_string(),
        },
    };
    p2.begin_transaction()?;
    send(&p2, &t, 0, "live").await?;
    p2.commit_transaction(T)?;
    let after: Vec<String> = read_isolated(cx, &t, 2, "read_committed")?
        .into_iter()
        .filter(|v| v.starts_with("0:"))
        .collect();
    eq(
        after,
        ["0:c1-0", "0:c2-0", "0:live"].map(String::from).to_vec(),
        "after fencing: the new instance's commit only",
    )?;
    Ok(format!(
        "commit, abort, commit; fenced: {}",
        zombie.chars().take(80).collect::<String>()
    ))
}

pub(super) async fn txn_offsets(cx: &mut Ctx) -> R<String> {
    let (src, dst) = (topic_name("txn-in"), topic_name("txn-out"));
    cx.create_topic(&src, 1, &[]).await?;
    cx.create_topic(&dst, 1, &[]).await?;
    let plain = cx.producer(&[])?;
    for i in 0..6 {
        send(&plain, &src, 0, &format!("m{i}")).await?;
    }
    let group = topic_name("txn-group");
    let c: BaseConsumer = client_config()
        .set("bootstrap.servers", &cx.bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create()?;
    c.subscribe(&[&src])?;
    let p = txn_producer(cx, &format!("compat-rdkafka-{group}"))?;
    for commit in [true, false] {
        let mut got = Vec::new();
        let deadline = Instant::now() + T;
        while got.len() < 3 && Instant::now() < deadline {
            if let Some(m) = c.poll(Duration::from_millis(200)) {
                let m = m?;
                got.push((
                    m.offset(),
                    String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                ));
            }
        }
        eq(got.len(), 3, "input records read")?;
        p.begin_transaction()?;
        for (_, v) in &got {
            send(&p, &dst, 0, &format!("{v}-out")).await?;
        }
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset(&src, 0, Offset::Offset(got[2].0 + 1))?;
        let cgm = c
            .group_metadata()
            .ok_or_else(|| super::Outcome::Fail("no group metadata".into()))?;
        p.send_offsets_to_transaction(&offsets, &cgm, T)?;
        if commit {
            p.commit_transaction(T)?;
        } else {
            p.abort_transaction(T)?;
        }
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&src, 0);
    let committed = c.committed_offsets(tpl, T)?;
    eq(
        committed.find_partition(&src, 0).map(|e| e.offset()),
        Some(Offset::Offset(3)),
        "the group's offset is the committed transaction's",
    )?;
    eq(
        read_isolated(cx, &dst, 1, "read_committed")?,
        ["0:m0-out", "0:m1-out", "0:m2-out"]
            .map(String::from)
            .to_vec(),
        "output of the committed transaction",
    )?;
    Ok("offsets committed with the transaction, dropped with the aborted one".into())
}
