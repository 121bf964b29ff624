//! A Service without a selector keeps the Endpoints its user writes, mirrored into an
//! EndpointSlice; deleting the Service takes the Endpoints and (through the garbage collector)
//! every slice with it. A managed slice edited by hand is put back.

use crate::support::*;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

const NS: &str = "selectorless";

async fn slices_labelled(api: &Api<EndpointSlice>, service: &str) -> Vec<EndpointSlice> {
    api.list(&ListParams::default().labels(&format!("kubernetes.io/service-name={service}")))
        .await
        .unwrap()
        .items
}

#[test]
fn selectorless_endpoints_are_mirrored_and_everything_goes_with_the_service() {
    run_test(selectorless_endpoints_are_mirrored_and_everything_goes_with_the_service_body());
}

async fn selectorless_endpoints_are_mirrored_and_everything_goes_with_the_service_body() {
    let _serial = serial().await;
    let c = Cluster::start().await;
    create_namespace(&c.client, NS).await;
    let services: Api<Service> = Api::namespaced(c.client.clone(), NS);
    let endpoints: Api<Endpoints> = Api::namespaced(c.client.clone(), NS);
    let slices = c.slices(NS);

    // A hand-written backend: a selectorless Service plus its Endpoints.
    let svc: Service = serde_json::from_value(json!({"metadata": {"name": "external-db"}, "spec": {"ports": [{"name": "pg", "port": 5432}]}})).unwrap();
    services.create(&PostParams::default(), &svc).await.unwrap();
    let ep: Endpoints = serde_json::from_value(json!({
        "metadata": {"name": "external-db"},
        "subsets": [{"addresses": [{"ip": "127.0.0.10"}], "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}],
    }))
    .unwrap();
    endpoints.create(&PostParams::default(), &ep).await.unwrap();
    let mirrored = eventually(5, "the mirrored slice", || async {
        let s = slices_labelled(&slices, "external-db").await;
        (s.len() == 1 && !s[0].endpoints.is_empty()).then(|| s[0].clone())
    })
    .await;
    let labels = mirrored.metadata.labels.clone().unwrap();
    assert_eq!(
        labels["endpointslice.kubernetes.io/managed-by"],
        "endpointslicemirroring-controller.k8s.io"
    );
    assert_eq!(mirrored.endpoints[0].addresses, ["127.0.0.10"]);
    assert_eq!(
        mirrored.metadata.owner_references.as_ref().unwrap()[0].kind,
        "Endpoints"
    );
    // The endpoints controller leaves the user's Endpoints alone.
    let kept = endpoints.get("external-db").await.unwrap();
    assert!(kept
        .metadata
        .labels
        .as_ref()
        .is_none_or(|l| !l.contains_key("endpoints.kubernetes.io/managed-by")));

    // A selector Service with slices, and a managed slice edited by hand.
    services
        .create(
            &PostParams::default(),
            &service("web", json!({"app": "web"}), 80),
        )
        .await
        .unwrap();
    c.pods(NS)
        .create(
            &PostParams::default(),
            &pod("web-0", json!({"app": "web"}), "10.42.2.1", true),
        )
        .await
        .unwrap();
    let web = eventually(5, "the slice of web", || async {
        let s = slices_labelled(&slices, "web").await;
        (s.len() == 1 && s[0].endpoints.len() == 1).then(|| s[0].clone())
    })
    .await;
    let mut edited = web.clone();
    edited.endpoints.clear();
    slices
        .replace(
            web.metadata.name.as_deref().unwrap(),
            &PostParams::default(),
            &edited,
        )
        .await
        .unwrap();
    eventually(5, "the edited slice repaired", || async {
        let s = slices_labelled(&slices, "web").await;
        (s.len() == 1 && s[0].endpoints.len() == 1).then_some(())
    })
    .await;

    // Deleting the Services: Endpoints and slices go too.
    services
        .delete("external-db", &DeleteParams::default())
        .await
        .unwrap();
    services
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        10,
        "Endpoints and slices of deleted Services gone",
        || async {
            let eps = endpoints.list(&ListParams::default()).await.unwrap().items;
            let s = slices.list(&ListParams::default()).await.unwrap().items;
            (eps.is_empty() && s.is_empty()).then_some(())
        },
    )
    .await;
}
