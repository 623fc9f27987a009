//! `?expand=` and `?fields=` end to end, as a client sees them: relation,
//! nested and back-relation expansion filtered by each target's viewRule,
//! email visibility inside expands, `fields` with `expand.*` paths and
//! `:excerpt`, on lists, views, writes and auth replies. Expected values
//! were checked against the reference (PocketBase v0.40.6).

mod common;

use common::session::Session;
use serde_json::{json, Value};

impl Session {
    /// GET as `token` (or a guest), expecting 200.
    fn get(&self, path: &str, token: Option<&str>) -> Value {
        let r = self.server.request("GET", path, token, None);
        assert_eq!(
            r.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()
    }
}

/// teams <- people.team <- posts.author / posts.friends <- comments.post,
/// all readable by guests.
struct Blog {
    s: Session,
    red: String,
    ann: String,
    bob: String,
    p1: String,
    p2: String,
    c1: String,
    c2: String,
}

fn blog(tag: &str) -> Blog {
    let s = Session::start(tag);
    let open = |name: &str, fields: Value| {
        s.collection(
            json!({"name": name, "type": "base", "listRule": "", "viewRule": "", "fields": fields}),
        )
    };
    let teams = open("teams", json!([{"name": "title", "type": "text"}]));
    let people = open(
        "people",
        json!([{"name": "name", "type": "text"},
               {"name": "team", "type": "relation", "collectionId": teams["id"], "maxSelect": 1}]),
    );
    let posts = open(
        "posts",
        json!([{"name": "title", "type": "text"}, {"name": "body", "type": "editor"},
               {"name": "author", "type": "relation", "collectionId": people["id"], "maxSelect": 1},
               {"name": "friends", "type": "relation", "collectionId": people["id"], "maxSelect": 5}]),
    );
    open(
        "comments",
        json!([{"name": "text", "type": "text"},
               {"name": "post", "type": "relation", "collectionId": posts["id"], "maxSelect": 1}]),
    );
    let red = s.create("teams", json!({"title": "Red"}));
    let ann = s.create("people", json!({"name": "Ann", "team": red}));
    let bob = s.create("people", json!({"name": "Bob"}));
    let p1 = s.create(
        "posts",
        json!({"title": "p1", "author": ann, "friends": [bob, ann],
               "body": "<p>An <strong>apple</strong> a day keeps the doctor away.</p>"}),
    );
    let p2 = s.create("posts", json!({"title": "p2", "author": bob}));
    let c1 = s.create("comments", json!({"text": "c1", "post": p1}));
    let c2 = s.create("comments", json!({"text": "c2", "post": p1}));
    Blog {
        s,
        red,
        ann,
        bob,
        p1,
        p2,
        c1,
        c2,
    }
}

fn names(items: &Value, key: &str) -> Vec<String> {
    items
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {items}"))
        .iter()
        .map(|i| i[key].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn expand_follows_relations_nesting_and_back_relations() {
    let b = blog("expand");
    let post = b.s.get(
        &format!(
            "/api/collections/posts/records/{}?expand=author.team,friends",
            b.p1
        ),
        None,
    );
    assert_eq!(post["author"], b.ann.as_str(), "the raw id stays in place");
    assert_eq!(post["expand"]["author"]["name"], "Ann");
    assert_eq!(post["expand"]["author"]["collectionName"], "people");
    assert_eq!(
        post["expand"]["author"]["expand"]["team"]["id"],
        b.red.as_str()
    );
    assert_eq!(
        names(&post["expand"]["friends"], "name"),
        ["Bob", "Ann"],
        "a multiple relation is an array in the stored order"
    );
    assert_eq!(
        post["expand"]["friends"][0]["expand"],
        Value::Null,
        "records the nested path did not go through get no expand key"
    );

    // Bob has no team: the path was followed and found nothing.
    let p2 = b.s.get(
        &format!("/api/collections/posts/records/{}?expand=author.team", b.p2),
        None,
    );
    assert_eq!(p2["expand"]["author"]["expand"], json!({}));

    // back-relation, on a list: one array per item, {} where none point back
    let list = b.s.get(
        "/api/collections/posts/records?expand=comments_via_post&sort=title",
        None,
    );
    let items = &list["items"];
    assert_eq!(
        names(&items[0]["expand"]["comments_via_post"], "id"),
        [b.c1.clone(), b.c2.clone()]
    );
    assert_eq!(items[1]["expand"], json!({}));

    // back-relation then forward again: nested inside each item's expand
    let ann = b.s.get(
        &format!(
            "/api/collections/people/records/{}?expand=posts_via_author.friends",
            b.ann
        ),
        None,
    );
    let owned = &ann["expand"]["posts_via_author"];
    assert_eq!(names(owned, "title"), ["p1"]);
    assert_eq!(
        names(&owned[0]["expand"]["friends"], "name"),
        ["Bob", "Ann"]
    );

    // unknown names, non-relation fields and bad back-relations are ignored
    for expand in [
        "nope",
        "title",
        "comments_via_text",
        "nope_via_post",
        "author..team",
    ] {
        let post = b.s.get(
            &format!("/api/collections/posts/records/{}?expand={expand}", b.p1),
            None,
        );
        assert!(post.get("expand").is_none(), "{expand}: {post}");
    }
}

#[test]
fn expand_only_shows_what_the_requester_may_view() {
    let b = blog("expand-rules");
    let s = &b.s;
    let secrets = s.collection(
        json!({"name": "secrets", "type": "base", "fields": [{"name": "code", "type": "text"}]}),
    );
    let vips = s.collection(json!({"name": "vips", "type": "base", "listRule": "", "viewRule": "name != 'Hidden'",
        "fields": [{"name": "name", "type": "text"},
                   {"name": "secret", "type": "relation", "collectionId": secrets["id"], "maxSelect": 1}]}));
    s.collection(json!({"name": "boards", "type": "base", "listRule": "", "viewRule": "",
        "fields": [{"name": "vips", "type": "relation", "collectionId": vips["id"], "maxSelect": 9},
                   {"name": "secret", "type": "relation", "collectionId": secrets["id"], "maxSelect": 1}]}));
    let code = s.create("secrets", json!({"code": "xyz"}));
    let shown = s.create("vips", json!({"name": "Shown", "secret": code}));
    let hidden = s.create("vips", json!({"name": "Hidden"}));
    let plain = s.create("vips", json!({"name": "Plain"}));
    let board = s.create(
        "boards",
        json!({"vips": [hidden, shown, plain], "secret": code}),
    );
    let path = |expand: &str| format!("/api/collections/boards/records/{board}?expand={expand}");

    // a viewRule expression filters inside the array, for guests only
    let guest = s.get(&path("vips"), None);
    assert_eq!(names(&guest["expand"]["vips"], "name"), ["Shown", "Plain"]);
    let su = s.get(&path("vips"), Some(&s.su));
    assert_eq!(
        names(&su["expand"]["vips"], "name"),
        ["Hidden", "Shown", "Plain"]
    );

    // a null viewRule: only superusers see the related record
    let guest = s.get(&path("secret"), None);
    assert_eq!(guest["secret"], code.as_str());
    assert!(guest.get("expand").is_none(), "{guest}");
    let su = s.get(&path("secret"), Some(&s.su));
    assert_eq!(su["expand"]["secret"]["code"], "xyz");

    // a path through a locked collection leaves nothing of that path...
    let guest = s.get(&path("vips.secret"), None);
    assert!(guest.get("expand").is_none(), "{guest}");
    // ...while the other paths still expand
    let guest = s.get(&path("vips.secret,secret,vips"), None);
    assert!(
        guest.get("expand").is_none(),
        "vips.secret covers vips: {guest}"
    );
    let guest = s.get(&path("secret,vips"), None);
    assert_eq!(names(&guest["expand"]["vips"], "name"), ["Shown", "Plain"]);
    assert!(guest["expand"].get("secret").is_none());
}

#[test]
fn expanded_auth_records_hide_emails_and_hidden_fields() {
    let s = Session::start("expand-auth");
    let members = s.collection(json!({"name": "members", "type": "auth", "listRule": "", "viewRule": "",
        "fields": [{"name": "name", "type": "text"}, {"name": "note", "type": "text", "hidden": true}]}));
    s.collection(json!({"name": "cards", "type": "base", "listRule": "", "viewRule": "",
        "fields": [{"name": "owner", "type": "relation", "collectionId": members["id"], "maxSelect": 1}]}));
    let member = |email: &str, visible: bool| {
        s.create(
            "members",
            json!({"email": email, "emailVisibility": visible, "password": "pass12345",
                   "passwordConfirm": "pass12345", "name": email, "note": "private"}),
        )
    };
    let quiet = member("quiet@example.com", false);
    let open = member("open@example.com", true);
    s.create("cards", json!({"owner": quiet}));
    s.create("cards", json!({"owner": open}));
    let quiet_token = s.server.login("members", "quiet@example.com", "pass12345");
    let owners = |token: Option<&str>| -> Vec<Value> {
        let list = s.get("/api/collections/cards/records?expand=owner", token);
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["expand"]["owner"].clone())
            .collect()
    };
    let guest = owners(None);
    assert!(guest[0].get("email").is_none(), "{}", guest[0]);
    assert_eq!(guest[1]["email"], "open@example.com");
    assert!(guest.iter().all(|o| o.get("note").is_none()));
    assert!(guest
        .iter()
        .all(|o| o.get("password").is_none() && o.get("tokenKey").is_none()));
    let me = owners(Some(&quiet_token));
    assert_eq!(me[0]["email"], "quiet@example.com", "one's own email");
    let su = owners(Some(&s.su));
    assert_eq!(su[0]["email"], "quiet@example.com");
    assert_eq!(su[0]["note"], "private", "superusers see hidden fields");
    assert!(su[0].get("tokenKey").is_none());
    let _ = open;
}

#[test]
fn fields_pick_keys_on_lists_views_and_writes() {
    let b = blog("fields");
    let s = &b.s;
    let list = s.get(
        "/api/collections/posts/records?fields=id,title&sort=title&perPage=1",
        None,
    );
    assert_eq!(list["items"], json!([{"id": b.p1, "title": "p1"}]));
    assert_eq!(
        (
            list["page"].clone(),
            list["perPage"].clone(),
            list["totalItems"].clone()
        ),
        (json!(1), json!(1), json!(2)),
        "the envelope stays"
    );

    let post = s.get(
        &format!(
            "/api/collections/posts/records/{}?expand=author.team,friends&fields=title,expand.author.name,expand.author.expand.team.title,expand.friends.name",
            b.p1
        ),
        None,
    );
    assert_eq!(
        post,
        json!({"title": "p1", "expand": {
            "author": {"name": "Ann", "expand": {"team": {"title": "Red"}}},
            "friends": [{"name": "Bob"}, {"name": "Ann"}]}})
    );

    let star = s.get(
        &format!("/api/collections/posts/records/{}?fields=*", b.p1),
        None,
    );
    assert_eq!(star["collectionName"], "posts");

    let excerpt = s.get(
        &format!(
            "/api/collections/posts/records/{}?fields=body:excerpt(10,true),title:excerpt(1)",
            b.p1
        ),
        None,
    );
    assert_eq!(excerpt, json!({"body": "An apple a...", "title": "p"}));

    for bad in [
        "title:nope",
        "title:excerpt(0)",
        "title:excerpt(1",
        "title:excerpt()",
    ] {
        let r = s.server.request(
            "GET",
            &format!("/api/collections/posts/records/{}?fields={bad}", b.p1),
            None,
            None,
        );
        r.assert_error(400);
    }

    // a write's answer: expand read as committed, fields applied
    let r = s.server.request(
        "POST",
        "/api/collections/posts/records?expand=author,friends&fields=title,expand.author.name,expand.friends.name",
        Some(&s.su),
        Some(&json!({"title": "new", "author": b.bob, "friends": [b.ann]})),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json(),
        json!({"title": "new", "expand": {"author": {"name": "Bob"}, "friends": [{"name": "Ann"}]}})
    );
    let r = s.server.request(
        "PATCH",
        &format!(
            "/api/collections/posts/records/{}?expand=author&fields=expand.author.name",
            b.p2
        ),
        Some(&s.su),
        Some(&json!({"author": b.ann})),
    );
    assert_eq!(r.json(), json!({"expand": {"author": {"name": "Ann"}}}));
}

#[test]
fn auth_replies_accept_expand_and_fields() {
    let s = Session::start("fields-auth");
    let teams = s.collection(json!({"name": "teams", "type": "base", "listRule": null, "viewRule": "@request.auth.id != ''",
        "fields": [{"name": "title", "type": "text"}]}));
    s.collection(json!({"name": "members", "type": "auth", "listRule": "", "viewRule": "",
        "fields": [{"name": "team", "type": "relation", "collectionId": teams["id"], "maxSelect": 1}]}));
    let red = s.create("teams", json!({"title": "Red"}));
    let id = s.create(
        "members",
        json!({"email": "m@example.com", "password": "pass12345", "passwordConfirm": "pass12345",
               "team": red, "emailVisibility": false}),
    );
    // the expand is read as the signed-in record, which the viewRule needs
    let r = s.server.request(
        "POST",
        "/api/collections/members/auth-with-password?expand=team&fields=token,record.id,record.email,record.expand.team.title",
        None,
        Some(&json!({"identity": "m@example.com", "password": "pass12345"})),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let reply = r.json();
    let token = reply["token"].as_str().unwrap().to_string();
    assert_eq!(
        reply["record"],
        json!({"id": id, "email": "m@example.com", "expand": {"team": {"title": "Red"}}})
    );
    assert_eq!(reply.as_object().unwrap().len(), 2);

    let r = s.server.request(
        "POST",
        "/api/collections/members/auth-refresh?expand=team&fields=record.expand.team.title",
        Some(&token),
        None,
    );
    assert_eq!(
        r.json(),
        json!({"record": {"expand": {"team": {"title": "Red"}}}})
    );

    // a bad fields value is reported after the credentials are checked
    let sign_in = |password: &str| {
        s.server.request(
            "POST",
            "/api/collections/members/auth-with-password?fields=x:nope",
            None,
            Some(&json!({"identity": "m@example.com", "password": password})),
        )
    };
    let wrong = sign_in("wrong-pass").assert_error(400);
    assert_eq!(wrong["message"], "Failed to authenticate.");
    let right = sign_in("pass12345").assert_error(400);
    assert_eq!(
        right["message"],
        "Something went wrong while processing your request."
    );
}

#[test]
fn back_relations_shape_and_depth_follow_the_reference() {
    let s = Session::start("expand-shape");
    let people = s.collection(
        json!({"name": "people", "type": "base", "listRule": "", "viewRule": "",
        "fields": [{"name": "name", "type": "text"}]}),
    );
    // a UNIQUE index on the back-relation field makes it a single object
    s.collection(json!({"name": "profiles", "type": "base", "listRule": "", "viewRule": "",
        "fields": [{"name": "bio", "type": "text"},
                   {"name": "person", "type": "relation", "collectionId": people["id"], "maxSelect": 1}],
        "indexes": ["CREATE UNIQUE INDEX idx_profiles_person ON profiles (person)"]}));
    let ann = s.create("people", json!({"name": "Ann"}));
    s.create("profiles", json!({"bio": "hi", "person": ann}));
    let got = s.get(
        &format!("/api/collections/people/records/{ann}?expand=profiles_via_person&fields=expand.profiles_via_person.bio"),
        None,
    );
    assert_eq!(
        got,
        json!({"expand": {"profiles_via_person": {"bio": "hi"}}})
    );

    // a self-relation chain: six levels are expanded, the seventh is not
    let chain = s.collection(
        json!({"name": "chain", "type": "base", "listRule": "", "viewRule": "",
        "fields": [{"name": "n", "type": "number"}]}),
    );
    let r = s.server.request(
        "PATCH",
        "/api/collections/chain",
        Some(&s.su),
        Some(&json!({"fields": [{"name": "n", "type": "number"},
            {"name": "next", "type": "relation", "collectionId": chain["id"], "maxSelect": 1}]})),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let mut next = String::new();
    for n in (0..10).rev() {
        next = s.create("chain", json!({"n": n, "next": next}));
    }
    let mut node = s.get(
        &format!(
            "/api/collections/chain/records/{next}?expand={}",
            ["next"; 9].join(".")
        ),
        None,
    );
    let mut depth = 0;
    while let Some(below) = node.get("expand").map(|e| e["next"].clone()) {
        node = below;
        depth += 1;
    }
    assert_eq!((depth, node["n"].clone()), (6, json!(6)));
}
