//! The routes: every handler with its OpenAPI description next to it (`#[utoipa::path]`), so the
//! document served at `/openapi.json` is generated from the code that answers. Each handler
//! checks its input, takes the lab's in-process lock where it changes the lab, and runs the `lab`
//! crate's blocking function on a blocking thread.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::events::LabEvent;
use crate::view::{EndView, LabView, LinkView, NodeView};
use crate::Shared;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "labwire",
        description = "Deploy, inspect, change and destroy network labs on this host. Every error answers with an `ApiError` body. Beyond loopback every request needs the server's token as `Authorization: Bearer TOKEN` (or `?token=TOKEN` for event streams and terminals)."
    ),
    paths(
        list_labs,
        deploy_lab,
        inspect_lab,
        destroy_lab,
        exec_in_lab,
        node_action,
        link_state,
        get_impairments,
        set_impairments,
        lab_events,
        node_terminal
    ),
    components(schemas(
        ApiError,
        ErrorCode,
        LabSummary,
        LabView,
        NodeView,
        LinkView,
        EndView,
        DeployRequest,
        DestroyResponse,
        ExecRequest,
        ExecResult,
        NodeAction,
        LinkStateRequest,
        LinkState,
        Impairments,
        ImpairmentsRequest,
        LabEvent
    )),
    modifiers(&BearerToken),
    tags((name = "labs", description = "Deployed labs"), (name = "nodes", description = "Nodes of a lab"), (name = "links", description = "Links of a lab"))
)]
struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = openapi.components.as_mut() {
            c.add_security_scheme(
                "token",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "token",
            Vec::<String>::new(),
        )]);
    }
}

/// The OpenAPI 3 document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/labs", get(list_labs).post(deploy_lab))
        .route("/labs/{lab}", get(inspect_lab).delete(destroy_lab))
        .route("/labs/{lab}/exec", post(exec_in_lab))
        .route("/labs/{lab}/nodes/{node}/{action}", post(node_action))
        .route("/labs/{lab}/nodes/{node}/terminal", get(node_terminal))
        .route("/labs/{lab}/links/state", post(link_state))
        .route(
            "/labs/{lab}/links/impairments",
            put(set_impairments).get(get_impairments),
        )
        .route("/labs/{lab}/events", get(lab_events))
        .fallback(|| async {
            ApiError::new(
                ErrorCode::NotFound,
                "no such API endpoint (see /openapi.json)",
            )
        })
        .route_layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            crate::auth::require_token,
        ));
    Router::new()
        .nest("/api/v1", api)
        .route("/openapi.json", get(|| async { Json(openapi()) }))
        .route("/", get(page))
        .route(
            "/app.js",
            get(|| asset("text/javascript", crate::view::PAGE_JS)),
        )
        .route("/app.css", get(|| asset("text/css", crate::view::PAGE_CSS)))
        .with_state(shared)
}

async fn page() -> Response {
    asset("text/html; charset=utf-8", crate::view::PAGE_HTML).await
}

async fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// Run a blocking lab operation off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("the operation panicked: {e}")))?
}

/// Run a blocking operation that changes lab `name`, holding the lab's in-process lock: requests
/// on one lab wait for each other, other labs go on.
async fn locked<T: Send + 'static>(
    s: &Shared,
    name: String,
    f: impl FnOnce(String) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let lock = s.locks.of(&name);
    let _held = lock.lock().await;
    blocking(move || f(name)).await
}

/// A lab name from the path, checked as the lab layer checks names.
fn lab_name(name: &str) -> ApiResult<String> {
    lab::paths::check_lab_name(name).map_err(ApiError::from)?;
    Ok(name.to_string())
}

fn body<T>(b: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    b.map(|Json(t)| t)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, e.body_text()))
}

/// The deployed lab `name` with its rows, or 404.
fn deployed(name: &str) -> ApiResult<(topology::Lab, Vec<lab::inspect::Row>)> {
    lab::inspect::lab(name)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("lab {name} is not deployed")))
}

/// The deployed lab `name` as the page draws it, links' states read live.
fn view_of(name: &str) -> ApiResult<LabView> {
    let (l, rows) = deployed(name)?;
    let live = lab::inspect::live_interfaces(name, &[]).map_err(ApiError::from)?;
    Ok(LabView::deployed(&l, &rows, &live))
}

/// One deployed lab in the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct LabSummary {
    pub name: String,
    /// Workload nodes (bridges and the host not counted).
    pub nodes: usize,
    /// Of which running.
    pub running: usize,
    /// The topology file it was deployed from (empty: from a request body or standard input).
    pub topology: String,
}

/// The deployed labs.
#[utoipa::path(get, path = "/api/v1/labs", tag = "labs",
    responses(
        (status = 200, description = "Every deployed lab", body = [LabSummary]),
        (status = 401, description = "No valid token", body = ApiError),
    ))]
async fn list_labs() -> ApiResult<Json<Vec<LabSummary>>> {
    blocking(|| {
        Ok(lab::inspect::all()
            .into_iter()
            .map(|(name, rows)| LabSummary {
                nodes: rows.len(),
                running: rows.iter().filter(|r| r.state == "running").count(),
                topology: rows
                    .first()
                    .map(|r| r.abs_lab_path.clone())
                    .unwrap_or_default(),
                name,
            })
            .collect())
    })
    .await
    .map(Json)
}

/// What to deploy: a topology's text, or the path of a topology file on the server (inside its
/// allowed directory). Exactly one of the two.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// The topology (YAML) itself; its relative paths start at the server's allowed directory.
    #[serde(default)]
    pub topology: Option<String>,
    /// A topology file on the server, relative to its allowed directory or absolute inside it.
    #[serde(default)]
    pub path: Option<String>,
    /// Destroy the lab first when it is deployed.
    #[serde(default)]
    pub reconfigure: bool,
}

/// Deploy a lab. A failing deploy leaves nothing behind.
#[utoipa::path(post, path = "/api/v1/labs", tag = "labs", request_body = DeployRequest,
    responses(
        (status = 201, description = "Deployed", body = LabView),
        (status = 400, description = "Not a deploy request, or a bad lab name", body = ApiError),
        (status = 401, description = "No valid token", body = ApiError),
        (status = 403, description = "The topology names host paths outside the allowed directory", body = ApiError),
        (status = 404, description = "The topology file does not exist", body = ApiError),
        (status = 409, description = "The lab is deployed already or busy", body = ApiError),
        (status = 422, description = "The topology does not validate, or the deploy failed (and was rolled back)", body = ApiError),
    ))]
async fn deploy_lab(
    State(s): State<Arc<Shared>>,
    req: Result<Json<DeployRequest>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<LabView>)> {
    let req = body(req)?;
    let s2 = s.clone();
    let (name, source) = blocking(move || crate::deploy::check(&s2.root, &req)).await?;
    let (exe, root) = (s.exe.clone(), s.root.clone());
    let view = locked(&s, name, move |name| {
        crate::deploy::run(&exe, &root, &source, &name)?;
        view_of(&name)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// A deployed lab as a graph: its nodes with their state and its links.
#[utoipa::path(get, path = "/api/v1/labs/{lab}", tag = "labs",
    params(("lab" = String, Path, description = "Lab name")),
    responses(
        (status = 200, description = "The lab", body = LabView),
        (status = 400, description = "Bad lab name", body = ApiError),
        (status = 401, description = "No valid token", body = ApiError),
        (status = 404, description = "Not deployed", body = ApiError),
    ))]
async fn inspect_lab(Path(name): Path<String>) -> ApiResult<Json<LabView>> {
    let name = lab_name(&name)?;
    blocking(move || view_of(&name).map(Json)).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DestroyParams {
    /// Also remove the lab directory.
    #[serde(default)]
    pub cleanup: bool,
}

/// What a destroy removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct DestroyResponse {
    pub lab: String,
    pub nodes: usize,
    pub links: usize,
    pub bridges: usize,
}

/// Destroy a lab from its recorded state.
#[utoipa::path(delete, path = "/api/v1/labs/{lab}", tag = "labs",
    params(("lab" = String, Path, description = "Lab name"), DestroyParams),
    responses(
        (status = 200, description = "Destroyed", body = DestroyResponse),
        (status = 400, description = "Bad lab name or parameters", body = ApiError),
        (status = 401, description = "No valid token", body = ApiError),
        (status = 404, description = "Not deployed", body = ApiError),
        (status = 409, description = "Another labwire process works on the lab", body = ApiError),
        (status = 500, description = "Some host objects could not be removed (the message lists them)", body = ApiError),
    ))]
async fn destroy_lab(
    State(s): State<Arc<Shared>>,
    Path(name): Path<String>,
    q: Result<Query<DestroyParams>, QueryRejection>,
) -> ApiResult<Json<DestroyResponse>> {
    let name = lab_name(&name)?;
    let Query(q) = q.map_err(|e| ApiError::new(ErrorCode::BadRequest, e.body_text()))?;
    locked(&s, name, move |name| {
        if lab::inspect::lab(&name).is_none() && !lab::paths::lab_state_dir(&name).exists() {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("lab {name} is not deployed"),
            ));
        }
        let d = lab::destroy::destroy(&name, q.cleanup)?;
        Ok(Json(DestroyResponse {
            lab: name,
            nodes: d.nodes,
            links: d.links,
            bridges: d.bridges,
        }))
    })
    .await
}

/// A command to run in nodes of a lab.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    /// Run with `/bin/sh -c` inside each node.
    pub cmd: String,
    /// Only these nodes (short or long names); every node when empty.
    #[serde(default)]
    pub nodes: Vec<String>,
}

/// What a command did in one node.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExecResult {
    pub node: String,
    pub long_name: String,
    pub cmd: String,
    pub return_code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run a command in nodes of a lab (results in node order; a failing command is its return code,
/// not an error).
#[utoipa::path(post, path = "/api/v1/labs/{lab}/exec", tag = "nodes", request_body = ExecRequest,
    params(("lab" = String, Path, description = "Lab name")),
    responses(
        (status = 200, description = "One result per node", body = [ExecResult]),
        (status = 400, description = "Bad lab name or body", body = ApiError),
        (status = 401, description = "No valid token", body = ApiError),
        (status = 404, description = "Lab not deployed, or no node matches", body = ApiError),
        (status = 422, description = "A selected node is not running", body = ApiError),
    ))]
async fn exec_in_lab(
    Path(name): Path<String>,
    req: Result<Json<ExecRequest>, JsonRejection>,
) -> ApiResult<Json<Vec<ExecResult>>> {
    let name = lab_name(&name)?;
    let req = body(req)?;
    if req.cmd.contains('\0') || req.nodes.iter().any(|n| n.contains('\0')) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "a NUL byte in the command or a node name",
        ));
    }
    blocking(move || {
        let select = lab::exec::Select::Match {
            nodes: &req.nodes,
            labels: &[],
        };
        let out = lab::exec::exec(&name, &select, &req.cmd)?;
        Ok(Json(
            out.into_iter()
                .map(|(n, o)| ExecResult {
                    node: n.name,
                    long_name: n.long_name,
                    cmd: req.cmd.clone(),
                    return_code: o.code,
                    stdout: o.stdout,
                    stderr: o.stderr,
                })
                .collect(),
        ))
    })
    .await
}

/// What to do to a node.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeAction {
    Stop,
    Start,
    Restart,
}

/// The deployed lab `lab` has node `node` (else 404).
fn has_node(lab: &str, node: &str) -> ApiResult<()> {
    let (l, _) = deployed(lab)?;
    if l.node(node).is_none() {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("lab {lab} has no node {node}"),
        ));
    }
    Ok(())
}

/// Stop, start or restart one node, keeping its links, addresses and MACs.
#[utoipa::path(post, path = "/api/v1/labs/{lab}/nodes/{node}/{action}", tag = "nodes",
    params(
        ("lab" = String, Path, description = "Lab name"),
        ("node" = String, Path, description = "Node name"),
        ("action" = NodeAction, Path, description = "stop, start or restart"),
    ),
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Bad lab name or action", body = ApiError),
        (status = 401, description = "No valid token", body = ApiError),
        (status = 404, description = "No such lab or node", body = ApiError),
        (status = 409, description = "Another labwire process works on the lab", body = ApiError),
        (status = 422, description = "The node's runtime cannot do it (an external container), or it failed", body = ApiError),
    ))]
async fn node_action(
    State(s): State<Arc<Shared>>,
    Path((name, node, action)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let name = lab_name(&name)?;
    let action: NodeAction = serde_json::from_value(serde_json::Value::String(action.clone()))
        .map_err(|_| {
            ApiError::new(
                ErrorCode::BadRequest,
                format!("unknown node action `{action}`; accepted: stop, start, restart"),
            )
        })?;
    locked(&s, name, move |name| {
        has_node(&name, &node)?;
        let action = match action {
            NodeAction::Stop => lab::lifecycle::Action::Stop,
            NodeAction::Start => lab::lifecycle::Action::Start,
            NodeAction::Restart => lab::lifecycle::Action::Restart,
        };
        lab::lifecycle::run(&name, &[node], action, std::time::Duration::ZERO)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// A link's carrier.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    Up,
    Down,
}

/// Take a link down (both ends lose carrier, as a pulled cable) or up again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkStateRequest {
    /// One end of the link: `node:interface` (the interface as the topology wrote it).
    pub endpoint: String,
    pub state: LinkState,
}

/// Impairments of one link end (absent: none).
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Impairments {
    pub delay_ms: Option<u32>,
    pub jitter_ms: Option<u32>,
    /// Percent of packets dropped.
    pub loss_percent: Option<f64>,
    /// Percent of packets corrupted.
    pub corruption_percent: Option<f64>,
    /// Percent of packets sent twice.
    pub duplication_percent: Option<f64>,
    /// Percent of packets sent out of order (needs a delay).
    pub reorder_percent: Option<f64>,
    /// Rate limit in kbit/s.
    pub rate_kbit: Option<u64>,
}

impl Impairments {
    /// As the lab layer holds them.
    fn to_lab(&self) -> topology::Impairment {
        topology::Impairment {
            delay_us: self.delay_ms.map(|v| u64::from(v) * 1000),
            jitter_us: self.jitter_ms.map(|v| u64::from(v) * 1000),
            loss: self.loss_percent,
            corruption: self.corruption_percent,
            duplication: self.duplication_percent,
            reorder: self.reorder_percent,
            rate_kbit: self.rate_kbit,
        }
    }

    fn from_lab(i: &topology::Impairment) -> Impairments {
        let ms = |us: Option<u64>| us.map(|v| u32::try_from(v / 1000).unwrap_or(u32::MAX));
        Impairments {
            delay_ms: ms(i.delay_us),
            jitter_ms: ms(i.jitter_us),
            loss_percent: i.loss,
            corruption_percent: i.corruption,
            duplication_percent: i.duplication,
            reorder_percent: i.reorder,
            rate_kbit: i.rate_kbit,
        }
    }

    /// Percentages within 0–100.
    fn check(&self) -> ApiResult<()> {
        for (what, v) in [
            ("loss_percent", self.loss_percent),
            ("corruption_percent", self.corruption_percent),
            ("duplication_percent", self.duplication_percent),
            ("reorder_percent", self.reorder_percent),
        ] {
            if let Some(v) = v.filter(|v| !(0.0..=100.0).contains(v)) {
                return Err(ApiError::new(
                    ErrorCode::BadRequest,
                    format!("{what} {v} is not a percentage (0 to 100)"),
                ));
            }
        }
        Ok(())
    }
}

/// Impairments to set on one link end.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImpairmentsRequest {
    /// `node:interface` (the interface as the topology wrote it).
    pub endpoint: String,
    pub impairments: Impairments,
}

/// `node:iface` split (else 400).
fn endpoint(endpoint: &str) -> ApiResult<(String, String)> {
    let (node, iface) = lab::linkops::parse_endpoint(endpoint)?;
    Ok((node.to_string(), iface.to_string()))
}

/// Set a link's state.
#[utoipa::path(post, path = "/api/v1/labs/{lab}/links/state", tag = "links", request_body = LinkStateRequest,
    params(("lab" = String, Path, description = "Lab name")),
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Bad lab name or body", body = ApiError),
        (status = 401, description = "No valid token", body = ApiError),
        (status = 404, description = "No such lab or link end", body = ApiError),
        (status = 409, description = "Another labwire process works on the lab", body = ApiError),
        (status = 422, description = "A node's end could not be changed", body = ApiError),
    ))]
async fn link_state(
    State(s): State<Arc<Shared>>,
    Path(name): Path<String>,
    req: Result<Json<LinkStateRequest>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let name = lab_name(&name)?;
    let req = body(req)?;
    locked(&s, name, move |name| {
        let (node, iface) = endpoint(&req.endpoint)?;
        let up = matches!(req.state, LinkState::Up);
        lab::linkops::set_link_state(&name, &node, &iface, up)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EndpointParam {
    /// `node:interface`.
    pub endpoint: String,
}

/// The impairments in force on one link end.
#[utoipa::path(get, path = "/api/v1/labs/{lab}/links/impairments", tag = "links",
    params(("lab" = String, Path, description = "Lab name"), EndpointParam),
    responses(
        (status = 200, description = "The impairments", body = Impairments),
        (status = 400, description = "Bad lab name or endpoint", body = ApiError),
        (status = 401, description = "No valid token", body = ApiError),
        (status = 404, description = "No such lab or link end", body = ApiError),
    ))]
async fn get_impairments(
    Path(name): Path<String>,
    q: Result<Query<EndpointParam>, QueryRejection>,
) -> ApiResult<Json<Impairments>> {
    let name = lab_name(&name)?;
    let Query(q) = q.map_err(|e| ApiError::new(ErrorCode::BadRequest, e.body_text()))?;
    blocking(move || {
        let (node, iface) = endpoint(&q.endpoint)?;
        let (l, _) = deployed(&name)?;
        let (_, ep) = lab::linkops::find_endpoint(&l, &node, &iface)?;
        let all = lab::linkops::show(&name, Some(&ep.node))?;
        Ok(Json(
            all.iter()
                .find(|(label, _)| *label == ep.label())
                .map(|(_, imp)| Impairments::from_lab(imp))
                .unwrap_or_default(),
        ))
    })
    .await
}

/// Set (replace) the impairments of one link end.
#[utoipa::path(put, path = "/api/v1/labs/{lab}/links/impairments", tag = "links", request_body = ImpairmentsRequest,
    params(("lab" = String, Path, description = "Lab name")),
    responses(
        (status = 204, description = "Done"),
        (status = 400, description = "Bad lab name or body", body = ApiError),
        (status = 401, description = "No valid token", body = ApiError),
        (status = 404, description = "No such lab or link end", body = ApiError),
        (status = 409, description = "Another labwire process works on the lab", body = ApiError),
        (status = 422, description = "Refused: the host kernel lacks sch_netem for delay or loss on a non-VM node, or the values do not go together", body = ApiError),
    ))]
async fn set_impairments(
    State(s): State<Arc<Shared>>,
    Path(name): Path<String>,
    req: Result<Json<ImpairmentsRequest>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let name = lab_name(&name)?;
    let req = body(req)?;
    locked(&s, name, move |name| {
        req.impairments.check()?;
        let (node, iface) = endpoint(&req.endpoint)?;
        lab::linkops::set(&name, &node, &iface, &req.impairments.to_lab())?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// The lab's changes as they happen, as Server-Sent Events: `lab` events carry a `LabEvent` (node
/// states as inspect sees them), `record` events a line of the lab's own event file unchanged
/// (`labwire events --format json`: node restarts, links down/up, impairments). The stream stays
/// open while the lab is not deployed (it reports the deploy when it comes).
#[utoipa::path(get, path = "/api/v1/labs/{lab}/events", tag = "labs",
    params(("lab" = String, Path, description = "Lab name")),
    responses(
        (status = 200, description = "An endless event stream", content_type = "text/event-stream", body = LabEvent),
        (status = 400, description = "Bad lab name", body = ApiError),
        (status = 401, description = "No valid token", body = ApiError),
    ))]
async fn lab_events(Path(name): Path<String>) -> ApiResult<Response> {
    let name = lab_name(&name)?;
    Ok(crate::events::stream(name).into_response())
}

/// An interactive terminal to a node over a WebSocket: a shell in a native or container node, the
/// serial console of a VM node. Binary frames carry the terminal's bytes both ways; a text frame
/// `{"rows": R, "cols": C}` resizes it.
#[utoipa::path(get, path = "/api/v1/labs/{lab}/nodes/{node}/terminal", tag = "nodes",
    params(
        ("lab" = String, Path, description = "Lab name"),
        ("node" = String, Path, description = "Node name"),
    ),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol"),
        (status = 400, description = "Bad lab name, or not a WebSocket request", body = ApiError),
        (status = 401, description = "No valid token", body = ApiError),
        (status = 404, description = "No such lab or node", body = ApiError),
        (status = 422, description = "The node is not running", body = ApiError),
    ))]
async fn node_terminal(
    Path((name, node)): Path<(String, String)>,
    ws: Result<
        axum::extract::ws::WebSocketUpgrade,
        axum::extract::ws::rejection::WebSocketUpgradeRejection,
    >,
) -> ApiResult<Response> {
    let name = lab_name(&name)?;
    let target = blocking(move || crate::terminal::target(&name, &node)).await?;
    let ws = ws.map_err(|e| ApiError::new(ErrorCode::BadRequest, e.body_text()))?;
    Ok(ws.on_upgrade(move |socket| crate::terminal::bridge(socket, target)))
}
