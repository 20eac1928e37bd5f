//! Fills a namespace with finished evaluation pods for the benchmarks:
//! `fill NAMESPACE COUNT [ANNOTATION_BYTES [PREFIX]]`: pods PREFIX-000000…
//! (PREFIX `bench` by default), finished now. Each pod is bound to a node
//! nobody manages and gets phase Succeeded through the status subresource.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (ns, count) = match args.as_slice() {
        [_, ns, count, ..] => (ns.clone(), count.parse::<usize>()?),
        _ => return Err("usage: fill NAMESPACE COUNT [ANNOTATION_BYTES [PREFIX]]".into()),
    };
    let padding = "x".repeat(args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(0));
    let prefix = args.get(4).cloned().unwrap_or_else(|| "bench".into());
    let client = kube::Client::try_default().await?;
    let api: Api<Pod> = Api::namespaced(client, &ns);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let results: Vec<Result<(), kube::Error>> = futures::stream::iter(0..count)
        .map(|i| {
            let (api, padding, now) = (api.clone(), padding.clone(), now.clone());
            let name = format!("{prefix}-{i:06}");
            async move {
                let pod: Pod = serde_json::from_value(json!({
                    "metadata": {
                        "name": name,
                        "labels": {"app": "evaluation", "eval-id": format!("e{i}"), "test-id": "bench"},
                        "annotations": {"bench/padding": padding},
                    },
                    "spec": {
                        "nodeName": "crucible-static-node",
                        "restartPolicy": "Never",
                        "containers": [{"name": "main", "image": "crucible.invalid/evaluation:bench"}],
                    },
                }))
                .map_err(kube::Error::SerdeError)?;
                api.create(&PostParams::default(), &pod).await?;
                let status = json!({"status": {"phase": "Succeeded", "containerStatuses": [{
                    "name": "main", "image": "crucible.invalid/evaluation:bench", "imageID": "",
                    "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": now}},
                }]}});
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await?;
                Ok(())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let failed = results.iter().filter(|r| r.is_err()).count();
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        return Err(format!("{failed} of {count} pods not created; first error: {e}").into());
    }
    Ok(())
}
