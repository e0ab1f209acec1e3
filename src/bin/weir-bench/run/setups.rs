//! Where the scenarios run: one node at each partition count, a three-node cluster at RF3
//! and RF1, and the start-up of a broker holding 10 GB.

use super::*;

impl Bench {
    pub(super) fn single_node(&mut self, partitions: u32) -> anyhow::Result<()> {
        // Weir keeps at most one descriptor per segment (index files are never held
        // open), in a cache sized to three quarters of the open-file limit by default:
        // past that, segment files are closed and reopened as the load moves around.
        let cache =
            self.rep.meta.nofile - (self.rep.meta.nofile / 4).max(64).min(self.rep.meta.nofile);
        if (partitions as u64) > cache {
            self.log(format!(
                "note: {partitions} partitions exceed Weir's default segment handle cache \
                 ({cache}: three quarters of the open-file limit {}); active segment files \
                 are reopened as the load moves between partitions",
                self.rep.meta.nofile
            ));
        }
        let sub = if partitions == 1 {
            "single".to_string()
        } else {
            format!("p{partitions}")
        };
        let (t, idx) = self.start_single(&format!("1 node (P{partitions} scenarios)"), &sub)?;
        let r = self.single_node_scenarios(&t, idx, partitions);
        self.stop(t, idx);
        r
    }

    pub(super) fn single_node_scenarios(
        &mut self,
        t: &Target,
        idx: usize,
        p: u32,
    ) -> anyhow::Result<()> {
        let base = Send {
            acks: "1",
            policy: "background",
            compression: "none",
            topic_compression: None,
            size: KIB,
        };
        // The base case first, then consume the topic it wrote (page cache hot).
        if self.has("produce") || self.has("consume") {
            let (_, topic, r) = self.produce(
                t,
                idx,
                At {
                    nodes: 1,
                    rf: 1,
                    partitions: p,
                },
                &base,
                true,
            )?;
            if r.errors > 0 || r.delivered == 0 {
                // Reported by produce(); what follows would only wait on the same fault.
                bail!("the base produce scenario failed; skipping the rest at {p} partitions");
            }
            if self.has("consume") {
                if let Err(e) = self.consume(t, 1, 1, p, &topic, r.delivered) {
                    self.problem(format!("consume, {p} partitions: {e:#}"));
                }
            }
            self.delete_topic(t, &topic);
        }
        if p == 1 && self.has("tls") && t.tls_bootstrap.is_some() {
            if let Err(e) = self.tls_rows(t, idx, &base) {
                self.problem(format!("TLS rows: {e:#}"));
            }
        }
        if p == 1 && self.has("acl") {
            if let Err(e) = self.acl_rows(&base) {
                self.problem(format!("ACL rows: {e:#}"));
            }
        }
        if p == 1 && (self.has("produce") || self.has("consume")) {
            if let Err(e) = self.raw(t, idx) {
                self.problem(format!("raw client: {e:#}"));
            }
        }
        if self.has("produce") {
            let mut sends = vec![];
            if p == 1 {
                // Who compresses: the producer (stored as sent) or the broker
                // (uncompressed batches rewritten by the topic's compression.type), each
                // codec at its default level (Kafka's for the broker: zstd 3, lz4 9).
                let mut pairs = vec![("zstd", None), ("none", Some("zstd"))];
                if !self.args.quick {
                    pairs.push(("none", Some("lz4")));
                }
                for (compression, topic_compression) in pairs {
                    sends.push(Send {
                        acks: "1",
                        policy: "background",
                        compression,
                        topic_compression,
                        size: KIB,
                    });
                }
            }
            if self.args.quick || p > 1 {
                sends.push(Send {
                    acks: "all",
                    policy: "durable",
                    compression: "none",
                    topic_compression: None,
                    size: KIB,
                });
            } else {
                for size in [KIB, 100] {
                    for compression in ["none", "lz4"] {
                        for (acks, policy) in [
                            ("1", "background"),
                            ("all", "background"),
                            ("1", "durable"),
                            ("all", "durable"),
                        ] {
                            let s = Send {
                                acks,
                                policy,
                                compression,
                                topic_compression: None,
                                size,
                            };
                            // The base case ran first.
                            if !(size == KIB
                                && compression == "none"
                                && acks == "1"
                                && policy == "background")
                            {
                                sends.push(s);
                            }
                        }
                    }
                }
            }
            for s in &sends {
                if let Err(e) = self.produce(
                    t,
                    idx,
                    At {
                        nodes: 1,
                        rf: 1,
                        partitions: p,
                    },
                    s,
                    false,
                ) {
                    self.problem(format!(
                        "produce {}B acks={} {} {}, {p} partitions: {e:#}",
                        s.size, s.acks, s.policy, s.compression
                    ));
                }
            }
        }
        if self.has("e2e") && p == 1 {
            let lingers: &[u32] = if self.args.quick { &[5] } else { &[5, 0] };
            for &linger in lingers {
                for policy in ["background", "durable"] {
                    let s = Send {
                        acks: "all",
                        policy,
                        compression: "none",
                        topic_compression: None,
                        size: KIB,
                    };
                    if let Err(e) = self.e2e(t, idx, 1, 1, &s, linger) {
                        self.problem(format!("e2e {policy} linger {linger}: {e:#}"));
                    }
                }
            }
        }
        Ok(())
    }

    pub(super) fn cluster(&mut self) -> anyhow::Result<()> {
        let dir = self.dir.join("cluster");
        let _ = std::fs::remove_dir_all(&dir);
        self.log("3-node cluster: starting with scripts/cluster");
        let (t, startup_s) = Target::start_cluster(&self.args.cluster_script, &self.weir, &dir, 3)?;
        std::thread::sleep(std::time::Duration::from_secs(1));
        let idle = t.sample();
        self.log(format!(
            "3 nodes: started in {startup_s:.2} s on {}, idle RSS {:.1} MB (sum)",
            t.bootstrap, idle.rss_mb
        ));
        self.rep.brokers.push(BrokerInfo {
            name: "3-node cluster (scripts/cluster; metrics endpoint off)".into(),
            nodes: 3,
            startup_s,
            idle_rss_mb: idle.rss_mb,
            idle_rss_ratio_mem: idle.rss_mb / self.rep.limits.mem_total_mb.max(1.0),
            topics: vec![],
            stop: None,
        });
        let idx = self.rep.brokers.len() - 1;
        let r = self.cluster_scenarios(&t, idx);
        self.stop(t, idx);
        r
    }

    pub(super) fn cluster_scenarios(&mut self, t: &Target, idx: usize) -> anyhow::Result<()> {
        let rounds = if self.args.quick { 1 } else { 3 };
        let mut ratio = ClusterRatio::default();
        for policy in ["durable", "background"] {
            let s = Send {
                acks: "all",
                policy,
                compression: "none",
                topic_compression: None,
                size: KIB,
            };
            let (mut a, mut b) = (vec![], vec![]);
            let n = if policy == "durable" { rounds } else { 1 };
            // Alternate RF1 and RF3, each on a new topic, so that drifting noise from
            // the rest of the machine falls on both.
            for round in 1..=n {
                self.round = (n > 1).then_some(round);
                a.push(
                    self.produce(
                        t,
                        idx,
                        At {
                            nodes: 3,
                            rf: 1,
                            partitions: 1,
                        },
                        &s,
                        false,
                    )?
                    .0
                    .msgs_per_s,
                );
                b.push(
                    self.produce(
                        t,
                        idx,
                        At {
                            nodes: 3,
                            rf: 3,
                            partitions: 1,
                        },
                        &s,
                        false,
                    )?
                    .0
                    .msgs_per_s,
                );
            }
            self.round = None;
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let r = mean(&b) / mean(&a).max(1e-9);
            self.log(format!("  RF3/RF1 acks=all {policy}: {r:.3}"));
            if policy == "durable" {
                ratio.rf3_over_rf1_acks_all_durable = r;
                ratio.per_round = a.iter().zip(&b).map(|(a, b)| b / a.max(1e-9)).collect();
                ratio.rf1_durable_msgs_per_s = a;
                ratio.rf3_durable_msgs_per_s = b;
            } else {
                ratio.rf3_over_rf1_acks_all_background = Some(r);
            }
        }
        self.rep.cluster = Some(ratio);
        let base = Send {
            acks: "1",
            policy: "background",
            compression: "none",
            topic_compression: None,
            size: KIB,
        };
        let (_, topic, r) = self.produce(
            t,
            idx,
            At {
                nodes: 3,
                rf: 3,
                partitions: 1,
            },
            &base,
            true,
        )?;
        if let Err(e) = self.consume(t, 3, 3, 1, &topic, r.delivered) {
            self.problem(format!("cluster consume: {e:#}"));
        }
        self.delete_topic(t, &topic);
        for policy in ["background", "durable"] {
            let s = Send {
                acks: "all",
                policy,
                compression: "none",
                topic_compression: None,
                size: KIB,
            };
            if let Err(e) = self.e2e(t, idx, 3, 3, &s, 5) {
                self.problem(format!("cluster e2e {policy}: {e:#}"));
            }
        }
        Ok(())
    }

    pub(super) fn startup(&mut self) -> anyhow::Result<()> {
        let gb = self.args.startup_gb;
        let (t, idx) = self.start_single("1 node (start-up scenario)", "startup")?;
        let partitions = 10;
        let res = (|| -> anyhow::Result<Target> {
            let topic = self.new_topic(&t, idx, partitions, 1, "background")?;
            self.log(format!(
                "start-up: writing {gb} GB to {topic} ({partitions} partitions)"
            ));
            let s = Send {
                acks: "1",
                policy: "background",
                compression: "none",
                topic_compression: None,
                size: KIB,
            };
            let mut args = self.produce_args_warmup(&t.bootstrap, &topic, &s, 5, 0.0);
            let bytes = (gb * 1e9) as u64;
            args.extend(["--seconds".into(), "3600".into()]);
            args.extend(["--max-bytes".into(), bytes.to_string()]);
            let r = self.run_producer(args)?;
            if r.errors > 0 {
                self.problem(format!("start-up fill: {} delivery errors", r.errors));
            }
            let stored = t.stored_bytes(&topic);
            self.log(format!(
                "  wrote {:.2} GB at {:.0} MB/s; stopping cleanly and restarting",
                stored as f64 / 1e9,
                r.mb_per_s
            ));
            let (t2, stopped, startup_s) = t.restart(&topic)?;
            if !stopped.clean {
                self.problem(format!("start-up: shutdown not clean: {}", stopped.detail));
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
            let idle = t2.sample();
            let after = t2.admin()?.high_watermarks(&topic, partitions)?;
            if after != r.delivered as i64 {
                self.problem(format!(
                    "start-up: {} messages acknowledged before the restart, high watermarks \
                     sum to {after} after",
                    r.delivered
                ));
            }
            let logged = std::fs::read_to_string(self.dir.join("startup/weir.log"))
                .ok()
                .and_then(|s| last_elapsed_ms(&s))
                .map(|ms| ms / 1000.0);
            self.log(format!(
                "  restarted in {startup_s:.2} s (broker log: {logged:?} s), shutdown took \
                 {:.2} s, idle RSS {:.1} MB",
                stopped.secs, idle.rss_mb
            ));
            self.rep.startup = Some(Startup {
                gb,
                partitions,
                fill_mb_per_s: r.mb_per_s,
                stored_gb: stored as f64 / 1e9,
                shutdown: stopped,
                startup_s,
                startup_logged_s: logged,
                idle_rss_mb: idle.rss_mb,
                messages_before: r.delivered,
                messages_after: after,
            });
            Ok(t2)
        })();
        match res {
            Ok(t2) => {
                self.stop(t2, idx);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}
