//! MLflow's JSON on the wire: experiments, runs (deserialised with only the selected fields
//! kept), and the request pieces of `log-batch`.

use super::*;

#[derive(Deserialize)]
pub(super) struct ExperimentJson {
    pub(super) experiment_id: String,
    pub(super) name: String,
    #[serde(default)]
    pub(super) artifact_location: String,
    #[serde(default)]
    pub(super) lifecycle_stage: String,
    #[serde(default, deserialize_with = "key_value_map")]
    pub(super) tags: BTreeMap<String, String>,
}

impl From<ExperimentJson> for Experiment {
    fn from(json: ExperimentJson) -> Self {
        Experiment {
            experiment_id: json.experiment_id,
            name: json.name,
            artifact_location: json.artifact_location,
            lifecycle_stage: json.lifecycle_stage,
            tags: json.tags,
        }
    }
}

pub(super) struct RunJson {
    pub(super) info: RunInfoJson,
    pub(super) data: RunDataJson,
}

impl<'de> Deserialize<'de> for RunJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ProjectedRun(&RunFields::all()).deserialize(deserializer)
    }
}

#[derive(Deserialize)]
pub(super) struct RunInfoJson {
    #[serde(default)]
    pub(super) run_id: Option<String>,
    #[serde(default)]
    pub(super) run_uuid: Option<String>,
    pub(super) experiment_id: String,
    #[serde(default)]
    pub(super) run_name: String,
    pub(super) status: RunStatus,
    #[serde(default, deserialize_with = "flexible_i64")]
    pub(super) start_time: Option<i64>,
    #[serde(default, deserialize_with = "flexible_i64")]
    pub(super) end_time: Option<i64>,
    #[serde(default)]
    pub(super) artifact_uri: String,
    #[serde(default)]
    pub(super) lifecycle_stage: String,
}

impl RunInfoJson {
    pub(super) fn into_info(self) -> Result<RunInfo, String> {
        let run_id = self
            .run_id
            .or(self.run_uuid)
            .ok_or_else(|| "run info without run_id".to_string())?;
        Ok(RunInfo {
            run_id,
            experiment_id: self.experiment_id,
            run_name: self.run_name,
            status: self.status,
            start_time: self.start_time,
            end_time: self.end_time,
            artifact_uri: self.artifact_uri,
            lifecycle_stage: self.lifecycle_stage,
        })
    }
}

#[derive(Default)]
pub(super) struct RunDataJson {
    pub(super) metrics: BTreeMap<String, f64>,
    pub(super) params: BTreeMap<String, String>,
    pub(super) tags: BTreeMap<String, String>,
}

impl RunJson {
    pub(super) fn into_run(self) -> Result<Run, String> {
        Ok(Run {
            info: self.info.into_info()?,
            tags: self.data.tags,
            params: self.data.params,
            metrics: self.data.metrics,
        })
    }
}

/// The body of `runs/search`, keeping only the tags, params and metrics of a [`RunFields`]:
/// left-out entries are dropped as they are read, never collected.
#[derive(Clone, Copy)]
pub(super) struct ProjectedSearchResponse<'f>(pub(super) &'f RunFields);

pub(super) struct SearchResponse {
    pub(super) runs: Vec<RunJson>,
    pub(super) next_page_token: Option<String>,
}

impl<'de> DeserializeSeed<'de> for ProjectedSearchResponse<'_> {
    type Value = SearchResponse;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ProjectedSearchResponse<'_> {
    type Value = SearchResponse;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a runs/search response")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut response = SearchResponse {
            runs: Vec::new(),
            next_page_token: None,
        };
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "runs" => response.runs = map.next_value_seed(ProjectedRuns(self.0))?,
                "next_page_token" => response.next_page_token = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(response)
    }
}

/// A list of runs, projected by a [`RunFields`].
pub(super) struct ProjectedRuns<'f>(pub(super) &'f RunFields);

impl<'de> DeserializeSeed<'de> for ProjectedRuns<'_> {
    type Value = Vec<RunJson>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ProjectedRuns<'_> {
    type Value = Vec<RunJson>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of runs")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut runs = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(run) = seq.next_element_seed(ProjectedRun(self.0))? {
            runs.push(run);
        }
        Ok(runs)
    }
}

/// One run `{info, data}`, projected by a [`RunFields`].
pub(super) struct ProjectedRun<'f>(pub(super) &'f RunFields);

impl<'de> DeserializeSeed<'de> for ProjectedRun<'_> {
    type Value = RunJson;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ProjectedRun<'_> {
    type Value = RunJson;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a run")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut info = None;
        let mut data = RunDataJson::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "info" => info = Some(map.next_value::<RunInfoJson>()?),
                "data" => data = map.next_value_seed(ProjectedRunData(self.0))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let info = info.ok_or_else(|| serde::de::Error::missing_field("info"))?;
        Ok(RunJson { info, data })
    }
}

/// A run's `{metrics, params, tags}`, projected by a [`RunFields`].
pub(super) struct ProjectedRunData<'f>(pub(super) &'f RunFields);

impl<'de> DeserializeSeed<'de> for ProjectedRunData<'_> {
    type Value = RunDataJson;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ProjectedRunData<'_> {
    type Value = RunDataJson;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("run data")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut data = RunDataJson::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "metrics" => {
                    data.metrics = map.next_value_seed(
                        SelectedEntries::<MlflowFloat, f64>::new(&self.0.metrics),
                    )?;
                }
                "params" => {
                    data.params = map
                        .next_value_seed(SelectedEntries::<String, String>::new(&self.0.params))?;
                }
                "tags" => {
                    data.tags =
                        map.next_value_seed(SelectedEntries::<String, String>::new(&self.0.tags))?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(data)
    }
}

/// `[{"key": k, "value": v, …}, …]` straight into a map, keeping the selected keys: tags and
/// params (`V` = `T` = `String`) and latest metrics (`V` = [`MlflowFloat`], `T` = `f64`; their
/// timestamp and step are ignored). A missing value is the protobuf default, as MLflow omits it.
pub(super) struct SelectedEntries<'k, V, T> {
    pub(super) keys: &'k KeySelection,
    pub(super) types: PhantomData<fn() -> (V, T)>,
}

impl<'k, V, T> SelectedEntries<'k, V, T> {
    pub(super) fn new(keys: &'k KeySelection) -> Self {
        SelectedEntries {
            keys,
            types: PhantomData,
        }
    }
}

impl<'de, V: DeserializeOwned + Default, T: From<V>> DeserializeSeed<'de>
    for SelectedEntries<'_, V, T>
{
    type Value = BTreeMap<String, T>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, V: DeserializeOwned + Default, T: From<V>> serde::de::Visitor<'de>
    for SelectedEntries<'_, V, T>
{
    type Value = BTreeMap<String, T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of {key, value}")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        #[derive(Deserialize)]
        #[serde(bound = "V: DeserializeOwned + Default")]
        struct Entry<V> {
            key: String,
            #[serde(default)]
            value: V,
        }
        let mut map = BTreeMap::new();
        while let Some(entry) = seq.next_element::<Entry<V>>()? {
            if self.keys.contains(&entry.key) {
                map.insert(entry.key, T::from(entry.value));
            }
        }
        Ok(map)
    }
}

/// Experiment tags: `[{"key": k, "value": v}, …]` into a map.
pub(super) fn key_value_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    SelectedEntries::<String, String>::new(&KeySelection::All).deserialize(deserializer)
}

/// int64 fields arrive as numbers or (protobuf JSON) as strings.
pub(super) fn flexible_i64<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flexible {
        Number(i64),
        Text(String),
    }
    match Option::<Flexible>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Flexible::Number(value)) => Ok(Some(value)),
        Some(Flexible::Text(text)) => text
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("not an integer: {text:?}"))),
    }
}

#[derive(Serialize)]
pub(super) struct KeyValue<'a> {
    pub(super) key: &'a str,
    pub(super) value: &'a str,
}

#[derive(Serialize)]
pub(super) struct MetricJson<'a> {
    pub(super) key: &'a str,
    pub(super) value: MlflowFloat,
    pub(super) timestamp: i64,
    pub(super) step: i64,
}

pub(super) fn view_name(view: ViewType) -> &'static str {
    match view {
        ViewType::ActiveOnly => "ACTIVE_ONLY",
        ViewType::DeletedOnly => "DELETED_ONLY",
        ViewType::All => "ALL",
    }
}

/// Splits a batch into requests within MLflow's per-request limits. Each item is
/// `(metrics range, params range, tags range)`.
pub(crate) fn batch_chunks(
    metrics: usize,
    params: usize,
    tags: usize,
) -> Vec<(
    std::ops::Range<usize>,
    std::ops::Range<usize>,
    std::ops::Range<usize>,
)> {
    let mut chunks = Vec::new();
    let (mut m, mut p, mut t) = (0, 0, 0);
    while m < metrics || p < params || t < tags {
        let p_end = params.min(p + MAX_PARAMS_PER_BATCH);
        let t_end = tags.min(t + MAX_TAGS_PER_BATCH);
        let room = MAX_ENTITIES_PER_BATCH - (p_end - p) - (t_end - t);
        let m_end = metrics.min(m + MAX_METRICS_PER_BATCH.min(room));
        chunks.push((m..m_end, p..p_end, t..t_end));
        (m, p, t) = (m_end, p_end, t_end);
    }
    chunks
}
