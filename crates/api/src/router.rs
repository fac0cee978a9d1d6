//! Paths to routes: the optional `/v1.NN` prefix (checked against the versions gorae
//! speaks), then Docker's endpoints. Image names contain slashes, so image routes match on
//! their last segment. Every path or method no route takes is Docker's 404 "page not found".

use hyper::Method;

use crate::error::ApiError;
use crate::query::decode_path;

/// The API version the server speaks, and the oldest it accepts.
pub const API_VERSION: (u32, u32) = (1, 51);
pub const MIN_API_VERSION: (u32, u32) = (1, 24);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Ping,
    Version,
    Info,
    Events,
    SystemDf,
    ContainerCreate,
    ContainerList,
    ContainerPrune,
    Container(String, ContainerOp),
    ExecStart(String),
    ExecResize(String),
    ExecInspect(String),
    VolumeList,
    VolumeCreate,
    VolumePrune,
    VolumeInspect(String),
    VolumeRemove(String),
    ImageCreate,
    ImageList,
    ImageLoad,
    ImageSave,
    ImagePrune,
    Image(String, ImageOp),
    NetworkList,
    NetworkCreate,
    NetworkPrune,
    Network(String, NetworkOp),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkOp {
    Inspect,
    Remove,
    Connect,
    Disconnect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerOp {
    Inspect,
    Start,
    Stop,
    Restart,
    Kill,
    Wait,
    Remove,
    Logs,
    Attach,
    Resize,
    Top,
    Stats,
    Pause,
    Unpause,
    Rename,
    Update,
    ArchiveStat,
    ArchiveGet,
    ArchivePut,
    ExecCreate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageOp {
    Inspect,
    History,
    Tag,
    Push,
    Save,
    Remove,
}

/// (major, minor).
pub type ApiVersion = (u32, u32);

/// The route and the version the client asked for (None: no prefix).
pub fn route(method: &Method, path: &str) -> Result<(Option<ApiVersion>, Route), ApiError> {
    let (version, rest) = split_version(path)?;
    let segments: Vec<String> = match rest.strip_prefix('/') {
        Some(rest) => rest.split('/').map(decode_path).collect(),
        None => return Err(ApiError::page_not_found()),
    };
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let route = match segs.first() {
        Some(&"volumes") => volume_route(method, &segs[1..]),
        Some(&"images") => image_route(method, &segs[1..]),
        Some(&"containers") => container_route(method, &segs[1..]),
        Some(&"exec") => exec_route(method, &segs[1..]),
        Some(&"networks") => network_route(method, &segs[1..]),
        _ => system_route(method, &segs),
    };
    route
        .map(|r| (version, r))
        .ok_or_else(ApiError::page_not_found)
}

/// Splits `/v1.51/containers/json` into the version and the rest. A first segment that is
/// not `v` and digits and dots is no prefix (and so, no route: 404).
fn split_version(path: &str) -> Result<(Option<ApiVersion>, &str), ApiError> {
    let Some(after) = path.strip_prefix("/v") else {
        return Ok((None, path));
    };
    let end = after.find('/').unwrap_or(after.len());
    let text = &after[..end];
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Ok((None, path));
    }
    let version = parse_version(text)
        .ok_or_else(|| ApiError::bad_request(format!("invalid API version {text:?}")))?;
    if version > API_VERSION {
        return Err(ApiError::bad_request(format!(
            "client version {text} is too new. Maximum supported API version is {}.{}",
            API_VERSION.0, API_VERSION.1
        )));
    }
    if version < MIN_API_VERSION {
        return Err(ApiError::bad_request(format!(
            "client version {text} is too old. Minimum supported API version is {}.{}, \
             please upgrade your client to a newer version",
            MIN_API_VERSION.0, MIN_API_VERSION.1
        )));
    }
    Ok((Some(version), &after[end..]))
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = match parts.next() {
        Some(m) => m.parse().ok()?,
        None => 0,
    };
    parts.next().is_none().then_some((major, minor))
}

fn system_route(method: &Method, segs: &[&str]) -> Option<Route> {
    let get = method == Method::GET;
    Some(match segs {
        ["_ping"] if get || method == Method::HEAD => Route::Ping,
        ["version"] if get => Route::Version,
        ["info"] if get => Route::Info,
        ["events"] if get => Route::Events,
        ["system", "df"] if get => Route::SystemDf,
        _ => return None,
    })
}

fn container_route(method: &Method, segs: &[&str]) -> Option<Route> {
    use ContainerOp::*;
    let m = method.as_str();
    let route = match (m, segs) {
        ("POST", ["create"]) => return Some(Route::ContainerCreate),
        ("GET", ["json"]) => return Some(Route::ContainerList),
        ("POST", ["prune"]) => return Some(Route::ContainerPrune),
        ("DELETE", [id]) => (id, Remove),
        (_, [id, op]) => (
            id,
            match (m, *op) {
                ("GET", "json") => Inspect,
                ("POST", "start") => Start,
                ("POST", "stop") => Stop,
                ("POST", "restart") => Restart,
                ("POST", "kill") => Kill,
                ("POST", "wait") => Wait,
                ("GET", "logs") => Logs,
                ("POST", "attach") => Attach,
                ("POST", "resize") => Resize,
                ("GET", "top") => Top,
                ("GET", "stats") => Stats,
                ("POST", "pause") => Pause,
                ("POST", "unpause") => Unpause,
                ("POST", "rename") => Rename,
                ("POST", "update") => Update,
                ("HEAD", "archive") => ArchiveStat,
                ("GET", "archive") => ArchiveGet,
                ("PUT", "archive") => ArchivePut,
                ("POST", "exec") => ExecCreate,
                _ => return None,
            },
        ),
        _ => return None,
    };
    (!route.0.is_empty()).then(|| Route::Container(route.0.to_string(), route.1))
}

fn network_route(method: &Method, segs: &[&str]) -> Option<Route> {
    let op = match (method.as_str(), segs) {
        ("GET", []) => return Some(Route::NetworkList),
        ("POST", ["create"]) => return Some(Route::NetworkCreate),
        ("POST", ["prune"]) => return Some(Route::NetworkPrune),
        (_, ["", ..]) => return None,
        ("GET", [_]) => NetworkOp::Inspect,
        ("DELETE", [_]) => NetworkOp::Remove,
        ("POST", [_, "connect"]) => NetworkOp::Connect,
        ("POST", [_, "disconnect"]) => NetworkOp::Disconnect,
        _ => return None,
    };
    Some(Route::Network(segs[0].to_string(), op))
}

fn exec_route(method: &Method, segs: &[&str]) -> Option<Route> {
    match (method.as_str(), segs) {
        (_, ["", ..]) => None,
        ("POST", [id, "start"]) => Some(Route::ExecStart(id.to_string())),
        ("POST", [id, "resize"]) => Some(Route::ExecResize(id.to_string())),
        ("GET", [id, "json"]) => Some(Route::ExecInspect(id.to_string())),
        _ => None,
    }
}

/// `create` and `prune` are POSTs; a volume may be called "create" (GET /volumes/create).
fn volume_route(method: &Method, segs: &[&str]) -> Option<Route> {
    Some(match (method.as_str(), segs) {
        ("GET", []) => Route::VolumeList,
        ("POST", ["create"]) => Route::VolumeCreate,
        ("POST", ["prune"]) => Route::VolumePrune,
        (_, [""]) => return None,
        ("GET", [name]) => Route::VolumeInspect(name.to_string()),
        ("DELETE", [name]) => Route::VolumeRemove(name.to_string()),
        _ => return None,
    })
}

fn image_route(method: &Method, segs: &[&str]) -> Option<Route> {
    let m = method.as_str();
    match (m, segs) {
        ("POST", ["create"]) => return Some(Route::ImageCreate),
        ("GET", ["json"]) => return Some(Route::ImageList),
        ("POST", ["load"]) => return Some(Route::ImageLoad),
        ("GET", ["get"]) => return Some(Route::ImageSave),
        ("POST", ["prune"]) => return Some(Route::ImagePrune),
        _ => {}
    }
    if m == "DELETE" {
        return image_name(segs).map(|name| Route::Image(name, ImageOp::Remove));
    }
    let (last, name) = segs.split_last()?;
    let op = match (m, *last) {
        ("GET", "json") => ImageOp::Inspect,
        ("GET", "history") => ImageOp::History,
        ("POST", "tag") => ImageOp::Tag,
        ("POST", "push") => ImageOp::Push,
        ("GET", "get") => ImageOp::Save,
        _ => return None,
    };
    image_name(name).map(|name| Route::Image(name, op))
}

/// The segments of an image name joined back; no empty segments (`/images//json`).
fn image_name(segs: &[&str]) -> Option<String> {
    (!segs.is_empty() && segs.iter().all(|s| !s.is_empty())).then(|| segs.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(method: Method, path: &str) -> Result<Route, ApiError> {
        route(&method, path).map(|(_, r)| r)
    }

    #[test]
    fn version_prefix_is_optional_and_checked() {
        assert_eq!(
            route(&Method::GET, "/v1.50/version").unwrap(),
            (Some((1, 50)), Route::Version)
        );
        assert_eq!(
            route(&Method::GET, "/version").unwrap(),
            (None, Route::Version)
        );
        assert_eq!(r(Method::GET, "/v1.24/info").unwrap(), Route::Info);
        let e = r(Method::GET, "/v1.52/version").unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(
            e.message,
            "client version 1.52 is too new. Maximum supported API version is 1.51"
        );
        let e = r(Method::GET, "/v1.23/version").unwrap_err();
        assert!(
            e.message.starts_with("client version 1.23 is too old"),
            "{}",
            e.message
        );
        // 1.9 is older than 1.24: versions compare as numbers, not text.
        assert_eq!(r(Method::GET, "/v1.9/_ping").unwrap_err().status, 400);
        assert_eq!(r(Method::GET, "/v2/_ping").unwrap_err().status, 400);
        assert_eq!(r(Method::GET, "/v1.2.3/_ping").unwrap_err().status, 400);
        assert_eq!(r(Method::GET, "/vx/_ping").unwrap_err().status, 404);
        assert_eq!(r(Method::GET, "/v1.51").unwrap_err().status, 404);
    }

    #[test]
    fn unknown_paths_and_methods_are_page_not_found() {
        for (m, p) in [
            (Method::GET, "/"),
            (Method::GET, ""),
            (Method::GET, "/nope"),
            (Method::PUT, "/containers/json"),
            (Method::GET, "/containers/x/start"),
            (Method::POST, "/containers//start"),
            (Method::GET, "/containers/json/"),
            (Method::DELETE, "/images/"),
            (Method::GET, "/images//json"),
            (Method::POST, "/exec//start"),
            (Method::POST, "/_ping"),
        ] {
            let e = r(m.clone(), p).unwrap_err();
            assert_eq!(
                (e.status, e.message.as_str()),
                (404, "page not found"),
                "{m} {p}"
            );
        }
    }

    #[test]
    fn container_and_exec_routes() {
        let c = |op| Route::Container("abc".into(), op);
        assert_eq!(
            r(Method::POST, "/containers/create").unwrap(),
            Route::ContainerCreate
        );
        assert_eq!(
            r(Method::GET, "/v1.50/containers/json").unwrap(),
            Route::ContainerList
        );
        assert_eq!(
            r(Method::GET, "/containers/abc/json").unwrap(),
            c(ContainerOp::Inspect)
        );
        assert_eq!(
            r(Method::DELETE, "/containers/abc").unwrap(),
            c(ContainerOp::Remove)
        );
        assert_eq!(
            r(Method::HEAD, "/containers/abc/archive").unwrap(),
            c(ContainerOp::ArchiveStat)
        );
        assert_eq!(
            r(Method::PUT, "/containers/abc/archive").unwrap(),
            c(ContainerOp::ArchivePut)
        );
        assert_eq!(
            r(Method::POST, "/containers/abc/exec").unwrap(),
            c(ContainerOp::ExecCreate)
        );
        assert_eq!(
            r(Method::POST, "/exec/e1/start").unwrap(),
            Route::ExecStart("e1".into())
        );
        assert_eq!(
            r(Method::GET, "/exec/e1/json").unwrap(),
            Route::ExecInspect("e1".into())
        );
    }

    #[test]
    fn volume_routes() {
        assert_eq!(r(Method::GET, "/v1.50/volumes").unwrap(), Route::VolumeList);
        assert_eq!(
            r(Method::POST, "/volumes/create").unwrap(),
            Route::VolumeCreate
        );
        assert_eq!(
            r(Method::POST, "/volumes/prune").unwrap(),
            Route::VolumePrune
        );
        assert_eq!(
            r(Method::GET, "/volumes/create").unwrap(),
            Route::VolumeInspect("create".into())
        );
        assert_eq!(
            r(Method::DELETE, "/volumes/v1").unwrap(),
            Route::VolumeRemove("v1".into())
        );
        for (m, p) in [
            (Method::GET, "/volumes/"),
            (Method::POST, "/volumes/v1"),
            (Method::GET, "/volumes/v1/json"),
        ] {
            assert_eq!(r(m.clone(), p).unwrap_err().status, 404, "{m} {p}");
        }
    }

    #[test]
    fn image_names_with_slashes_route_by_suffix() {
        let name = "localhost:5000/a/b:tag";
        let i = |op| Route::Image(name.into(), op);
        assert_eq!(
            r(Method::GET, &format!("/images/{name}/json")).unwrap(),
            i(ImageOp::Inspect)
        );
        assert_eq!(
            r(Method::GET, &format!("/v1.50/images/{name}/history")).unwrap(),
            i(ImageOp::History)
        );
        assert_eq!(
            r(Method::POST, &format!("/images/{name}/tag")).unwrap(),
            i(ImageOp::Tag)
        );
        assert_eq!(
            r(Method::POST, &format!("/images/{name}/push")).unwrap(),
            i(ImageOp::Push)
        );
        assert_eq!(
            r(Method::GET, &format!("/images/{name}/get")).unwrap(),
            i(ImageOp::Save)
        );
        assert_eq!(
            r(Method::DELETE, &format!("/images/{name}")).unwrap(),
            i(ImageOp::Remove)
        );
        assert_eq!(
            r(Method::GET, "/images/localhost%3A5000%2Fa/json").unwrap(),
            Route::Image("localhost:5000/a".into(), ImageOp::Inspect)
        );
        assert_eq!(r(Method::GET, "/images/json").unwrap(), Route::ImageList);
        assert_eq!(
            r(Method::GET, "/v1.50/networks").unwrap(),
            Route::NetworkList
        );
        assert_eq!(
            r(Method::POST, "/networks/n1/connect").unwrap(),
            Route::Network("n1".into(), NetworkOp::Connect)
        );
        assert_eq!(
            r(Method::DELETE, "/networks/n1").unwrap(),
            Route::Network("n1".into(), NetworkOp::Remove)
        );
        assert!(r(Method::GET, "/networks//x").is_err());
        assert_eq!(r(Method::GET, "/images/get").unwrap(), Route::ImageSave);
        assert_eq!(
            r(Method::POST, "/images/create").unwrap(),
            Route::ImageCreate
        );
        assert_eq!(r(Method::POST, "/images/load").unwrap(), Route::ImageLoad);
        assert_eq!(r(Method::POST, "/images/prune").unwrap(), Route::ImagePrune);
        // An image may be called "json": inspecting it is /images/json/json.
        assert_eq!(
            r(Method::GET, "/images/json/json").unwrap(),
            Route::Image("json".into(), ImageOp::Inspect)
        );
    }
}
