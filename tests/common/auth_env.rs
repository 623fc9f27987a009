//! A session with a server whose mails go to an in-test SMTP sink, and the
//! small steps the auth tests repeat (sign up, log in, request an OTP).

use super::smtp_sink::Sink;
use super::{Response, Server, TempDir};
use serde_json::{json, Value};

/// The password every account of these tests has.
pub const PASSWORD: &str = "flow-pass-123";

pub fn body_text(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

pub struct Env {
    _tmp: TempDir,
    pub server: Server,
    pub sink: Sink,
    pub su: String,
}

/// A fresh server whose mail goes to a fresh sink, with a superuser token.
pub fn env(tag: &str) -> Env {
    let tmp = TempDir::new(tag);
    let server = Server::start(&tmp);
    let su = server.superuser_token();
    let sink = Sink::start();
    sink.attach(&server, &su);
    Env {
        _tmp: tmp,
        server,
        sink,
        su,
    }
}

impl Env {
    pub fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.server.request("POST", path, token, Some(&body))
    }

    pub fn sign_up(&self, collection: &str, email: &str) -> String {
        let r = self.post(
            &format!("/api/collections/{collection}/records"),
            Some(&self.su),
            json!({"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD}),
        );
        assert_eq!(r.status, 200, "{}", body_text(&r));
        r.json()["id"].as_str().unwrap().to_string()
    }

    pub fn login(&self, collection: &str, email: &str, password: &str) -> Response {
        self.post(
            &format!("/api/collections/{collection}/auth-with-password"),
            None,
            json!({"identity": email, "password": password}),
        )
    }

    pub fn record(&self, collection: &str, id: &str) -> Value {
        let r = self.server.request(
            "GET",
            &format!("/api/collections/{collection}/records/{id}"),
            Some(&self.su),
            None,
        );
        assert_eq!(r.status, 200, "{}", body_text(&r));
        r.json()
    }

    pub fn refresh_status(&self, collection: &str, token: &str) -> u16 {
        self.post(
            &format!("/api/collections/{collection}/auth-refresh"),
            Some(token),
            json!({}),
        )
        .status
    }

    pub fn auth_collection(&self, name: &str, options: Value) -> String {
        let mut body = json!({"name": name, "type": "auth", "createRule": "",
                              "listRule": "id = @request.auth.id", "viewRule": "id = @request.auth.id",
                              "fields": [{"name": "strict", "type": "bool"}]});
        if let (Some(b), Some(o)) = (body.as_object_mut(), options.as_object()) {
            b.extend(o.clone());
        }
        let r = self.post("/api/collections", Some(&self.su), body);
        assert_eq!(r.status, 200, "{}", body_text(&r));
        name.to_string()
    }

    /// Requests an OTP and reads the emailed code: (otpId, code).
    pub fn emailed_otp(&self, collection: &str, email: &str) -> (String, String) {
        let r = self.post(
            &format!("/api/collections/{collection}/request-otp"),
            None,
            json!({"email": email}),
        );
        assert_eq!(r.status, 200, "{}", body_text(&r));
        let code = self.sink.wait_for(email).code(6);
        (r.json()["otpId"].as_str().unwrap().to_string(), code)
    }
}
