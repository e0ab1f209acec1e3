//! The measurements: produce, consume and end-to-end latency with librdkafka, and the raw
//! client that shows what the broker does without a client library's limits; each row
//! with the resources it used.

use super::*;

impl Bench {
    /// A produce scenario on its own topic (deleted afterwards unless `keep`).
    pub(super) fn produce(
        &mut self,
        t: &Target,
        idx: usize,
        at: At,
        s: &Send,
        keep: bool,
    ) -> anyhow::Result<(Row, String, ProduceResult)> {
        let At {
            nodes,
            rf,
            partitions,
        } = at;
        let topic =
            self.new_topic_compressed(t, idx, partitions, rf, s.policy, s.topic_compression)?;
        self.sync_disk();
        let stored_before = t.stored_bytes(&topic);
        let (bootstrap, sets) = self.client_endpoint(t);
        let mut args = self.produce_args(&bootstrap, &topic, s, 5);
        args.extend(sets);
        args.extend(["--seconds".into(), self.seconds.to_string()]);
        args.extend(["--max-bytes".into(), MAX_PRODUCE_BYTES.to_string()]);
        t.reset_peak();
        let before = t.sample();
        let r = self.run_producer(args)?;
        let after = t.sample();
        let kind = if self.via_tls {
            "produce-tls"
        } else if self.via_acl {
            "produce-acl"
        } else {
            "produce"
        };
        let spec = self.spec(kind, nodes, rf, partitions, s);
        if r.errors > 0 {
            self.problem(format!(
                "{}: {} delivery errors, first: {}",
                spec.id(),
                r.errors,
                r.first_error.clone().unwrap_or_default()
            ));
        }
        let stored = t.stored_bytes(&topic).saturating_sub(stored_before);
        let row = Row {
            spec,
            msgs_per_s: r.msgs_per_s,
            mb_per_s: r.mb_per_s,
            lat: Some(r.lat),
            bytes: r.delivered_bytes,
            stored_per_payload: Some(stored as f64 / (r.delivered_bytes as f64).max(1.0)),
            errors: r.errors,
            notes: if r.queue_full > 0 {
                vec![format!("client queue full {} times", r.queue_full)]
            } else {
                vec![]
            },
            ..Row::default()
        };
        let cpu = r.cpu_s;
        let row = self.finish_row(row, before, after, cpu);
        if !keep {
            self.delete_topic(t, &topic);
        }
        Ok((row, topic, r))
    }

    /// Consumes `topic` from the beginning; `expect` messages are in it.
    pub(super) fn consume(
        &mut self,
        t: &Target,
        nodes: u32,
        rf: u32,
        partitions: u32,
        topic: &str,
        expect: u64,
    ) -> anyhow::Result<Row> {
        t.reset_peak();
        let before = t.sample();
        let (bootstrap, sets) = self.client_endpoint(t);
        let mut args: Vec<String> = vec![
            "--bootstrap".into(),
            bootstrap,
            "--topic".into(),
            topic.into(),
            "--partitions".into(),
            partitions.to_string(),
            "--expect".into(),
            expect.to_string(),
            "--deadline".into(),
            "120".into(),
        ];
        if partitions >= 10_000 {
            // librdkafka 2.12 with its default queued.min.messages (100,000 per partition)
            // stalls on 10,000 partitions: the consumer spins a CPU and stops receiving
            // with 5-20 % unread (confluent-kafka 2.16 reads everything from the same
            // broker). Asking it to prefetch less per partition avoids that; it then spends its
            // time in fetches that long-poll on the drained partitions (see performance.md).
            args.extend(["--set".into(), "queued.min.messages=1000".into()]);
        }
        args.extend(sets);
        let r: ConsumeResult = self.run_child("consume", &args)?;
        let after = t.sample();
        let spec = Spec {
            kind: if self.via_tls {
                "consume-tls"
            } else if self.via_acl {
                "consume-acl"
            } else {
                "consume"
            }
            .into(),
            nodes,
            rf,
            partitions,
            size: KIB,
            acks: "1".into(),
            policy: "background".into(),
            compression: "none".into(),
            topic_compression: None,
            linger_ms: 5,
            rate_mb_s: None,
            round: None,
        };
        let mut notes = vec![format!("first message {:.3} s after assign", r.startup_s)];
        if r.incomplete || r.errors > 0 {
            self.problem(format!(
                "{}: read {} of {} messages, {} errors{}",
                spec.id(),
                r.msgs,
                expect,
                r.errors,
                r.first_error
                    .as_ref()
                    .map_or(String::new(), |e| format!(", first: {e}"))
            ));
            notes.push("incomplete".into());
        }
        let row = Row {
            spec,
            msgs_per_s: r.msgs_per_s,
            mb_per_s: r.mb_per_s,
            lat: None,
            bytes: r.bytes,
            errors: r.errors,
            notes,
            ..Row::default()
        };
        Ok(self.finish_row(row, before, after, r.cpu_s))
    }

    /// End-to-end latency at a fixed rate: the consumer (started first) reads what the
    /// producer sends, each payload stamped with its scheduled send time.
    pub(super) fn e2e(
        &mut self,
        t: &Target,
        idx: usize,
        nodes: u32,
        rf: u32,
        s: &Send,
        linger: u32,
    ) -> anyhow::Result<Row> {
        let topic = self.new_topic(t, idx, 1, rf, s.policy)?;
        self.sync_disk();
        let rate_mb = self.args.e2e_mbps;
        let rate = rate_mb * 1e6 / s.size as f64;
        t.reset_peak();
        let before = t.sample();
        let cargs: Vec<String> = vec![
            "--bootstrap".into(),
            t.bootstrap.clone(),
            "--topic".into(),
            topic.clone(),
            "--e2e".into(),
            "--ready".into(),
            "--idle".into(),
            "1.5".into(),
            "--warmup".into(),
            self.warmup.to_string(),
            "--deadline".into(),
            (self.seconds + 60.0).to_string(),
        ];
        let mut consumer = self
            .child("consume", &cargs)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the consumer")?;
        let mut out = BufReader::new(consumer.stdout.take().context("consumer stdout")?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        if line.trim() != "READY" {
            let _ = consumer.kill();
            let _ = consumer.wait();
            bail!("consumer did not get ready: {line:?}");
        }
        let mut pargs = self.produce_args(&t.bootstrap, &topic, s, linger);
        pargs.extend(["--seconds".into(), self.seconds.to_string()]);
        pargs.extend(["--rate".into(), rate.to_string()]);
        let p = self.run_producer(pargs);
        let p = match p {
            Ok(p) => p,
            Err(e) => {
                let _ = consumer.kill();
                let _ = consumer.wait();
                return Err(e);
            }
        };
        line.clear();
        out.read_line(&mut line)?;
        consumer.wait()?;
        let after = t.sample();
        let c: ConsumeResult = serde_json::from_str(&line).context("consumer output")?;
        let mut spec = self.spec("e2e", nodes, rf, 1, s);
        spec.linger_ms = linger;
        spec.rate_mb_s = Some(rate_mb);
        if c.msgs != p.delivered || p.errors > 0 || c.errors > 0 {
            self.problem(format!(
                "{}: produced {} (errors {}), consumed {} (errors {})",
                spec.id(),
                p.delivered,
                p.errors,
                c.msgs,
                c.errors
            ));
        }
        let mut notes = vec![];
        let achieved = p.mb_per_s;
        if achieved < 0.95 * rate_mb {
            notes.push(format!("producer reached only {achieved:.1} MB/s"));
        }
        let row = Row {
            spec,
            msgs_per_s: p.msgs_per_s,
            mb_per_s: p.mb_per_s,
            lat: c.lat,
            ack_lat: Some(p.lat),
            bytes: p.delivered_bytes,
            errors: p.errors + c.errors,
            notes,
            ..Row::default()
        };
        let row = self.finish_row(row, before, after, p.cpu_s + c.cpu_s);
        self.log(format!(
            "    send→ack at that rate: p50 {:.2} ms p99 {:.2} ms",
            p.lat.p50_ms, p.lat.p99_ms
        ));
        self.delete_topic(t, &topic);
        Ok(row)
    }

    /// The base produce case and its consume again over TLS (the broker's SSL listener:
    /// rustls encrypts, and fetched file ranges are read into memory instead of sent with
    /// sendfile), each noted with its ratio to the plaintext row of this run.
    pub(super) fn tls_rows(&mut self, t: &Target, idx: usize, base: &Send) -> anyhow::Result<()> {
        self.via_tls = true;
        let rows = self.base_pair(t, idx, base);
        self.via_tls = false;
        let (produce, consume) = rows?;
        for tls in [produce, consume] {
            self.note_ratio(&tls, "-tls/", "the plaintext row's MB/s", "TLS / plaintext");
        }
        Ok(())
    }

    /// Notes on `row` its MB/s as a ratio to the row of the same run whose id lacks
    /// `variant` (the same scenario without TLS, without an authorizer, ...).
    pub(super) fn note_ratio(&mut self, row: &Row, variant: &str, of: &str, label: &str) {
        let base_id = row.id.replacen(variant, "/", 1);
        let Some(base) = self
            .rep
            .rows
            .iter()
            .find(|r| r.id == base_id)
            .map(|r| r.mb_per_s)
        else {
            return;
        };
        let ratio = row.mb_per_s / base.max(1e-9);
        if let Some(r) = self.rep.rows.iter_mut().find(|r| r.id == row.id) {
            r.notes.push(format!("{ratio:.2} of {of}"));
        }
        self.log(format!("  {}: {label} = {ratio:.2}", row.id));
    }

    /// The base produce case on one partition and its consume (the TLS and ACL rows).
    pub(super) fn base_pair(
        &mut self,
        t: &Target,
        idx: usize,
        base: &Send,
    ) -> anyhow::Result<(Row, Row)> {
        let at = At {
            nodes: 1,
            rf: 1,
            partitions: 1,
        };
        let (produce, topic, r) = self.produce(t, idx, at, base, true)?;
        let consume = self.consume(t, 1, 1, 1, &topic, r.delivered);
        self.delete_topic(t, &topic);
        Ok((produce, consume?))
    }

    /// The base produce case and its consume again, with the raw client of `raw.rs`:
    /// what the broker does when the client costs next to no CPU. The full run adds
    /// 100-byte records, and a run long enough to pass the kernel's dirty-page limit
    /// (`dirty.rs`), where background flush is held to the disk's rate.
    pub(super) fn raw(&mut self, t: &Target, idx: usize) -> anyhow::Result<()> {
        let topic = self.new_topic(t, idx, 1, 1, "background")?;
        // A short window: the page cache takes all of it before the kernel's dirty-page
        // limit, so this is the broker's own rate (the sustained row below is the disk's).
        let burst = self.seconds.min(1.0);
        let (r, mut spec) = self.raw_produce(t, &topic, "produce-raw", KIB, self.warmup, burst)?;
        let args: Vec<String> = vec![
            "--bootstrap".into(),
            t.bootstrap.clone(),
            "--topic".into(),
            topic.clone(),
            "--size".into(),
            KIB.to_string(),
            "--expect".into(),
            r.total_msgs.to_string(),
        ];
        t.reset_peak();
        let before = t.sample();
        let c = self.run_child::<RawResult>("raw-consume", &args)?;
        let after = t.sample();
        spec.kind = "consume-raw".into();
        let row = Row {
            spec,
            msgs_per_s: c.msgs_per_s,
            mb_per_s: c.mb_per_s,
            bytes: c.bytes,
            errors: c.errors,
            notes: vec!["records counted from batch headers, not parsed".into()],
            ..Row::default()
        };
        self.finish_row(row, before, after, c.cpu_s);
        self.delete_topic(t, &topic);
        if self.args.quick {
            return Ok(());
        }
        let topic = self.new_topic(t, idx, 1, 1, "background")?;
        self.raw_produce(t, &topic, "produce-raw", 100, self.warmup, burst)?;
        self.delete_topic(t, &topic);
        // Warm up until well past the dirty-page limit at the ~2 GB/s the page cache takes.
        let warmup = (dirty::free_run_bytes() as f64 / 1e9 + 2.0).clamp(3.0, 30.0);
        let topic = self.new_topic(t, idx, 1, 1, "background")?;
        let seconds = self.seconds;
        self.raw_produce(t, &topic, "produce-raw-sustained", KIB, warmup, seconds)?;
        self.delete_topic(t, &topic);
        Ok(())
    }

    /// One raw-client produce row on `topic` (1 partition, acks=1, background flush),
    /// after flushing the disk so that earlier rows' dirty pages do not count here.
    pub(super) fn raw_produce(
        &mut self,
        t: &Target,
        topic: &str,
        kind: &str,
        size: usize,
        warmup: f64,
        seconds: f64,
    ) -> anyhow::Result<(RawResult, Spec)> {
        self.sync_disk();
        let args: Vec<String> = vec![
            "--bootstrap".into(),
            t.bootstrap.clone(),
            "--topic".into(),
            topic.into(),
            "--size".into(),
            size.to_string(),
            "--seconds".into(),
            seconds.to_string(),
            "--warmup".into(),
            warmup.to_string(),
        ];
        t.reset_peak();
        let before = t.sample();
        let r = self.run_child::<RawResult>("raw-produce", &args)?;
        let after = t.sample();
        let dirty_mb = dirty::dirty_bytes() as f64 / 1e6;
        let mut spec = self.spec(
            kind,
            1,
            1,
            1,
            &Send {
                acks: "1",
                policy: "background",
                compression: "none",
                topic_compression: None,
                size,
            },
        );
        spec.linger_ms = 0;
        if r.errors > 0 {
            self.problem(format!(
                "{}: {} errors, first: {}",
                spec.id(),
                r.errors,
                r.first_error.clone().unwrap_or_default()
            ));
        }
        let row = Row {
            spec: spec.clone(),
            msgs_per_s: r.msgs_per_s,
            mb_per_s: r.mb_per_s,
            lat: r.lat,
            bytes: r.total_msgs * size as u64,
            errors: r.errors,
            notes: vec![
                "one pre-encoded 1 MiB batch sent over and over, 5 in flight".into(),
                format!(
                    "{seconds:.1} s measured after {warmup:.1} s of warm-up; page cache dirty \
                     or under writeback at the end: {dirty_mb:.0} MB"
                ),
            ],
            ..Row::default()
        };
        self.finish_row(row, before, after, r.cpu_s);
        Ok((r, spec))
    }
}
