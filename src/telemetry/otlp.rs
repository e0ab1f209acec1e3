//! The part of OpenTelemetry's metrics protocol (OTLP `MetricsData`, protobuf) that
//! clients push in PushTelemetry (KIP-714): resources with attributes, and metrics whose
//! data points are numbers (gauges and sums). Other kinds (histograms, summaries) and
//! unknown fields are skipped by the decoder. prost does the decoding; the messages
//! below declare the fields read, with OTLP's own field numbers.

use prost::Message;

#[derive(Clone, PartialEq, Message)]
pub struct MetricsData {
    #[prost(message, repeated, tag = "1")]
    pub resource_metrics: Vec<ResourceMetrics>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ResourceMetrics {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    pub scope_metrics: Vec<ScopeMetrics>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Resource {
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ScopeMetrics {
    #[prost(message, repeated, tag = "2")]
    pub metrics: Vec<Metric>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Metric {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(oneof = "Data", tags = "5, 7")]
    pub data: Option<Data>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Data {
    #[prost(message, tag = "5")]
    Gauge(Gauge),
    #[prost(message, tag = "7")]
    Sum(Sum),
}

#[derive(Clone, PartialEq, Message)]
pub struct Gauge {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<NumberDataPoint>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Sum {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<NumberDataPoint>,
    /// 1 delta, 2 cumulative.
    #[prost(int32, tag = "2")]
    pub aggregation_temporality: i32,
    #[prost(bool, tag = "3")]
    pub is_monotonic: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct NumberDataPoint {
    #[prost(message, repeated, tag = "7")]
    pub attributes: Vec<KeyValue>,
    #[prost(oneof = "Number", tags = "4, 6")]
    pub value: Option<Number>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Number {
    #[prost(double, tag = "4")]
    AsDouble(f64),
    #[prost(sfixed64, tag = "6")]
    AsInt(i64),
}

#[derive(Clone, PartialEq, Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct AnyValue {
    #[prost(oneof = "Value", tags = "1, 2, 3, 4")]
    pub value: Option<Value>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Value {
    #[prost(string, tag = "1")]
    String(String),
    #[prost(bool, tag = "2")]
    Bool(bool),
    #[prost(int64, tag = "3")]
    Int(i64),
    #[prost(double, tag = "4")]
    Double(f64),
}

/// One number a client reported: metric name, whether it only grows (a monotonic sum),
/// its attributes (resource's first, then the data point's) and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub name: String,
    pub counter: bool,
    pub attributes: Vec<(String, String)>,
    pub value: f64,
}

/// Decodes an uncompressed `MetricsData` payload into its number points.
pub fn decode(payload: &[u8]) -> Result<Vec<Point>, prost::DecodeError> {
    let data = MetricsData::decode(payload)?;
    let mut out = Vec::new();
    for rm in &data.resource_metrics {
        let resource: Vec<(String, String)> = rm
            .resource
            .as_ref()
            .map(|r| r.attributes.iter().filter_map(attribute).collect())
            .unwrap_or_default();
        for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
            let (points, counter) = match &m.data {
                Some(Data::Gauge(g)) => (&g.data_points, false),
                Some(Data::Sum(s)) => (&s.data_points, s.is_monotonic),
                None => continue,
            };
            for p in points {
                let value = match p.value {
                    Some(Number::AsDouble(v)) => v,
                    Some(Number::AsInt(v)) => v as f64,
                    None => continue,
                };
                let mut attributes = resource.clone();
                attributes.extend(p.attributes.iter().filter_map(attribute));
                out.push(Point {
                    name: m.name.clone(),
                    counter,
                    attributes,
                    value,
                });
            }
        }
    }
    Ok(out)
}

fn attribute(kv: &KeyValue) -> Option<(String, String)> {
    let v = match kv.value.as_ref()?.value.as_ref()? {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Double(d) => d.to_string(),
    };
    Some((kv.key.clone(), v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: Value) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(v) }),
        }
    }

    #[test]
    fn gauges_and_sums_decode_with_their_attributes() {
        let data = MetricsData {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![kv("client_id", Value::String("app".into()))],
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        Metric {
                            name: "org.apache.kafka.producer.record.queue.time.avg".into(),
                            data: Some(Data::Gauge(Gauge {
                                data_points: vec![NumberDataPoint {
                                    attributes: vec![kv("node_id", Value::Int(2))],
                                    value: Some(Number::AsDouble(1.5)),
                                }],
                            })),
                        },
                        Metric {
                            name: "org.apache.kafka.producer.connection.creation.total".into(),
                            data: Some(Data::Sum(Sum {
                                data_points: vec![NumberDataPoint {
                                    attributes: vec![],
                                    value: Some(Number::AsInt(7)),
                                }],
                                aggregation_temporality: 2,
                                is_monotonic: true,
                            })),
                        },
                    ],
                }],
            }],
        };
        let points = decode(&data.encode_to_vec()).unwrap();
        assert_eq!(points.len(), 2);
        assert_eq!(
            points[0].attributes,
            vec![
                ("client_id".to_string(), "app".to_string()),
                ("node_id".to_string(), "2".to_string())
            ]
        );
        assert_eq!((points[0].value, points[0].counter), (1.5, false));
        assert_eq!((points[1].value, points[1].counter), (7.0, true));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(&[0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        assert!(decode(&[]).unwrap().is_empty());
    }
}
