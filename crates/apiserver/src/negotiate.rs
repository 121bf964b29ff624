//! Content negotiation: what the client accepts (`Accept`) and what it sent (`Content-Type`).

use model::ApiError;

/// How a response is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    /// meta.k8s.io Table, in `v1` or `v1beta1`.
    Table { v1beta1: bool },
    /// PartialObjectMetadata or PartialObjectMetadataList.
    PartialMetadata,
    /// apidiscovery.k8s.io/v2 aggregated discovery (only for `/api` and `/apis`).
    AggregatedDiscovery,
}

struct MediaRange<'a> {
    mime: &'a str,
    params: Vec<(&'a str, &'a str)>,
}

fn parse_accept(header: &str) -> Vec<MediaRange<'_>> {
    header
        .split(',')
        .map(|item| {
            let mut parts = item.split(';').map(str::trim);
            let mime = parts.next().unwrap_or("");
            let params = parts.filter_map(|p| p.split_once('=')).map(|(k, v)| (k.trim(), v.trim().trim_matches('"'))).collect();
            MediaRange { mime, params }
        })
        .filter(|m| !m.mime.is_empty())
        .collect()
}

/// Picks the first acceptable representation. `discovery` allows the aggregated discovery type.
pub fn choose_output(accept: Option<&str>, discovery: bool) -> Result<Output, ApiError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Output::Json);
    };
    let ranges = parse_accept(accept);
    let mut rejected_as = false;
    for m in &ranges {
        let param = |k: &str| m.params.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v);
        let is_json = matches!(m.mime, "application/json" | "*/*" | "application/*");
        match (m.mime, param("as"), param("g"), param("v")) {
            ("application/yaml", None, _, _) => return Ok(Output::Yaml),
            (_, None, _, _) if is_json => return Ok(Output::Json),
            ("application/json", Some("Table"), Some("meta.k8s.io"), Some("v1")) => return Ok(Output::Table { v1beta1: false }),
            ("application/json", Some("Table"), Some("meta.k8s.io"), Some("v1beta1")) => return Ok(Output::Table { v1beta1: true }),
            ("application/json", Some("PartialObjectMetadata" | "PartialObjectMetadataList"), Some("meta.k8s.io"), Some("v1")) => {
                return Ok(Output::PartialMetadata)
            }
            ("application/json", Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2")) if discovery => {
                return Ok(Output::AggregatedDiscovery)
            }
            ("application/json", Some(_), _, _) => rejected_as = true,
            _ => {}
        }
    }
    if rejected_as {
        return Err(ApiError::not_acceptable(
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf",
        ));
    }
    let mut e = ApiError::not_acceptable(
        "406: Not Acceptable\n\nAvailable representations: application/json, application/yaml, application/vnd.kubernetes.protobuf",
    );
    e.details = Some(serde_json::Map::new());
    Err(e)
}

/// The format of a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    Json,
    Yaml,
    JsonPatch,
    MergePatch,
    StrategicMergePatch,
    ApplyYaml,
    ApplyCbor,
    Protobuf,
}

pub fn body_type(content_type: Option<&str>) -> Option<BodyType> {
    let ct = content_type.unwrap_or("application/json");
    let mime = ct.split(';').next().unwrap_or("").trim();
    Some(match mime {
        "application/json" | "" => BodyType::Json,
        "application/yaml" => BodyType::Yaml,
        "application/json-patch+json" => BodyType::JsonPatch,
        "application/merge-patch+json" => BodyType::MergePatch,
        "application/strategic-merge-patch+json" => BodyType::StrategicMergePatch,
        "application/apply-patch+yaml" => BodyType::ApplyYaml,
        "application/apply-patch+cbor" => BodyType::ApplyCbor,
        "application/vnd.kubernetes.protobuf" => BodyType::Protobuf,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_get_asks_for_table() {
        let a = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(choose_output(Some(a), false).unwrap(), Output::Table { v1beta1: false });
        assert_eq!(choose_output(Some("application/json"), false).unwrap(), Output::Json);
        assert_eq!(choose_output(None, false).unwrap(), Output::Json);
        assert_eq!(choose_output(Some("application/yaml"), false).unwrap(), Output::Yaml);
        assert_eq!(choose_output(Some("application/json;as=Nope;v=v1;g=meta.k8s.io, application/json"), false).unwrap(), Output::Json);
        assert_eq!(choose_output(Some("application/json;as=Nope;v=v1;g=meta.k8s.io"), false).unwrap_err().code, 406);
        assert_eq!(choose_output(Some("text/html"), false).unwrap_err().code, 406);
        let d = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
        assert_eq!(choose_output(Some(d), true).unwrap(), Output::AggregatedDiscovery);
        assert_eq!(choose_output(Some(d), false).unwrap(), Output::Json);
    }
}
