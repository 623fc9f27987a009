//! A test session as a superuser: a server with its data dir, the
//! superuser's token, and the calls most scenario tests start with. Test
//! files add their own calls in `impl Session` blocks of their own.

use super::{Server, TempDir};
use serde_json::Value;

pub struct Session {
    pub server: Server,
    pub su: String,
    _tmp: TempDir,
}

impl Session {
    pub fn start(tag: &str) -> Session {
        let tmp = TempDir::new(tag);
        let server = Server::start(&tmp);
        let su = server.superuser_token();
        Session {
            server,
            su,
            _tmp: tmp,
        }
    }

    /// Creates a collection as the superuser, expecting 200.
    pub fn collection(&self, body: Value) -> Value {
        let r = self
            .server
            .request("POST", "/api/collections", Some(&self.su), Some(&body));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    }

    /// Creates a record as the superuser, expecting 200; its id.
    pub fn create(&self, collection: &str, body: Value) -> String {
        let path = format!("/api/collections/{collection}/records");
        let r = self
            .server
            .request("POST", &path, Some(&self.su), Some(&body));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["id"].as_str().unwrap().to_string()
    }
}
