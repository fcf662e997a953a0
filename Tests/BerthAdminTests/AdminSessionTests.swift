import BerthCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
@testable import BerthAdmin

/// The web admin's sessions as pure values: expiry, the cap, tokens, the cookie.
@Suite("Admin sessions")
struct AdminSessionTests {
    @Test("a session ends after the idle timeout, and after its lifetime however busy")
    func expiry() {
        let sessions = AdminSessions(policy: .init(idleTimeout: 60, lifetime: 300, maxSessions: 4))
        let start = Date(timeIntervalSince1970: 1_000_000)
        let (cookie, grant) = sessions.create(now: start)
        #expect(grant.expiresAt == start.addingTimeInterval(60))
        #expect(sessions.session(cookie, now: start.addingTimeInterval(59)) != nil)
        // Each use moves the idle deadline, never past the lifetime.
        var now = start
        for _ in 0..<5 {
            now = now.addingTimeInterval(50)
            #expect(sessions.session(cookie, now: now) != nil)
        }
        #expect(sessions.session(cookie, now: start.addingTimeInterval(301)) == nil)
        let (idle, _) = sessions.create(now: start)
        #expect(sessions.session(idle, now: start.addingTimeInterval(61)) == nil)
        // Polls the page makes by itself do not keep a session alive.
        let (polled, _) = sessions.create(now: start)
        #expect(sessions.session(polled, now: start.addingTimeInterval(40), touch: false) != nil)
        #expect(sessions.session(polled, now: start.addingTimeInterval(61), touch: false) == nil)
        #expect(sessions.session("not-a-session") == nil)
    }

    @Test("over the cap the least recently used session goes; logout removes one")
    func cap() {
        let sessions = AdminSessions(policy: .init(idleTimeout: 600, lifetime: 3600, maxSessions: 3))
        let start = Date()
        let first = sessions.create(now: start).cookieValue
        let second = sessions.create(now: start.addingTimeInterval(1)).cookieValue
        let third = sessions.create(now: start.addingTimeInterval(2)).cookieValue
        _ = sessions.session(first, now: start.addingTimeInterval(3))
        let fourth = sessions.create(now: start.addingTimeInterval(4)).cookieValue
        #expect(sessions.count == 3)
        #expect(sessions.session(second, now: start.addingTimeInterval(5)) == nil, "least recently used")
        #expect(sessions.session(first, now: start.addingTimeInterval(5)) != nil)
        sessions.remove(third)
        #expect(sessions.session(third, now: start.addingTimeInterval(5)) == nil)
        #expect(sessions.session(fourth, now: start.addingTimeInterval(5)) != nil)
    }

    @Test("tokens are 256 random bits in cookie-safe characters, and differ")
    func tokens() {
        let tokens = (0..<100).map { _ in AdminSessions.randomToken() }
        #expect(Set(tokens).count == 100)
        for token in tokens {
            #expect(token.count == 43)
            #expect(token.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        }
        #expect(AdminSessions.constantTimeEquals("abc", "abc"))
        #expect(!AdminSessions.constantTimeEquals("abc", "abd"))
        #expect(!AdminSessions.constantTimeEquals("abc", "abcd"))
        #expect(!AdminSessions.constantTimeEquals("", "a"))
    }

    @Test("the cookie: HttpOnly, SameSite=Strict; over TLS a Secure __Host- cookie")
    func cookieAttributes() {
        let plain = SessionCookie(secure: false).header("v", maxAge: 60)
        #expect(plain == "berth_session=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=60")
        let secure = SessionCookie(secure: true).header("v", maxAge: 60)
        #expect(secure == "__Host-berth_session=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=60; Secure")
        #expect(SessionCookie(secure: false).clear.contains("Max-Age=0"))
    }
}

/// The session endpoints, CSRF, cross-site refusal, dry runs and headers on the router.
@Suite("Admin API: web admin sessions")
struct AdminSessionAPITests {
    typealias API = CertificateAPITests

    /// Logs in and returns the cookie header value and the CSRF token.
    static func login(_ client: any TestClientProtocol) async throws -> (cookie: String, csrf: String) {
        try await client.execute(
            uri: "/api/v1/session", method: .post, headers: [.contentType: "application/json"],
            body: ByteBuffer(string: #"{"password":"\#(API.password)"}"#)
        ) { response in
            #expect(response.status == .ok)
            let setCookie = try #require(response.headers[.setCookie])
            #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict"))
            let cookie = String(setCookie.split(separator: ";")[0])
            let json = try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
            return (cookie, try #require(json["csrfToken"] as? String))
        }
    }

    static func status(
        _ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, headers: HTTPFields, body: String? = nil
    ) async throws -> (Int, [String: Any]) {
        try await client.execute(uri: path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
            let data = Data(response.body.readableBytesView)
            return (Int(response.status.code), (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:])
        }
    }

    @Test("login, read with the cookie, write only with the CSRF token, logout ends it")
    func sessionFlow() async throws {
        try await API.withAPI { _, client in
            let (wrong, body) = try await Self.status(
                client, .post, "/api/v1/session", headers: [.contentType: "application/json"], body: #"{"password":"nope"}"#)
            #expect(wrong == 401)
            #expect(API.error(body)["field"] as? String == "password")

            let (cookie, csrf) = try await Self.login(client)
            let (read, _) = try await Self.status(client, .get, "/api/v1/ports", headers: [.cookie: cookie])
            #expect(read == 200)
            let (session, grant) = try await Self.status(client, .get, "/api/v1/session", headers: [.cookie: cookie])
            #expect(session == 200 && grant["csrfToken"] as? String == csrf)
            #expect(grant["serverName"] is String)

            let port = API.json(["name": "Web", "protocol": "smtp", "encryption": "none", "port": 2525])
            let (noToken, refusal) = try await Self.status(
                client, .post, "/api/v1/ports", headers: [.cookie: cookie, .contentType: "application/json"], body: port)
            #expect(noToken == 403)
            #expect(API.error(refusal)["code"] as? String == "csrf")
            let (badToken, _) = try await Self.status(
                client, .post, "/api/v1/ports",
                headers: [.cookie: cookie, .contentType: "application/json", AdminLogin.csrfHeader: csrf + "x"], body: port)
            #expect(badToken == 403)
            let (created, _) = try await Self.status(
                client, .post, "/api/v1/ports",
                headers: [.cookie: cookie, .contentType: "application/json", AdminLogin.csrfHeader: csrf], body: port)
            #expect(created == 201)

            let (logout, _) = try await Self.status(
                client, .delete, "/api/v1/session", headers: [.cookie: cookie, AdminLogin.csrfHeader: csrf])
            #expect(logout == 204)
            let (after, expired) = try await Self.status(client, .get, "/api/v1/ports", headers: [.cookie: cookie])
            #expect(after == 401)
            #expect(API.error(expired)["code"] as? String == "session_expired")
        }
    }

    @Test("a state-changing request another site makes the browser send is refused, Basic auth or not")
    func crossSite() async throws {
        try await API.withAPI { _, client in
            var headers = API.auth
            headers[.origin] = "http://evil.example"
            headers[HTTPField.Name("Host")!] = "127.0.0.1:8080"
            let (status, body) = try await Self.status(client, .post, "/api/v1/queue/retry", headers: headers)
            #expect(status == 403)
            #expect(API.error(body)["code"] as? String == "cross_origin")
            var fetchMetadata = API.auth
            fetchMetadata[HTTPField.Name("Sec-Fetch-Site")!] = "cross-site"
            #expect(try await Self.status(client, .post, "/api/v1/queue/retry", headers: fetchMetadata).0 == 403)
            var sameOrigin = API.auth
            sameOrigin[HTTPField.Name("Sec-Fetch-Site")!] = "same-origin"
            #expect(try await Self.status(client, .post, "/api/v1/queue/retry", headers: sameOrigin).0 == 200)
            // Reads are not refused: they change nothing.
            #expect(try await Self.status(client, .get, "/api/v1/ports", headers: headers).0 == 200)
        }
    }

    @Test("dryRun answers like the real call and saves nothing")
    func dryRun() async throws {
        try await API.withAPI { harness, client in
            let port = API.json(["name": "Trial", "protocol": "smtp", "encryption": "none", "port": 2526])
            let (status, body) = try await Self.status(client, .post, "/api/v1/ports?dryRun=true", headers: API.auth, body: port)
            #expect(status == 200)
            #expect(body["name"] as? String == "Trial")
            #expect(try harness.store.bindings().ports.isEmpty)
            let (bad, _) = try await Self.status(client, .post, "/api/v1/ports?dryRun=maybe", headers: API.auth, body: port)
            #expect(bad == 422)

            // Two ports on one number: the dry-run assignment names the conflict, and the
            // address keeps its ports.
            let (_, first) = try await Self.status(client, .post, "/api/v1/ports", headers: API.auth, body: port)
            let other = API.json(["name": "Other", "protocol": "smtp", "encryption": "none", "port": 2526])
            let (_, second) = try await Self.status(client, .post, "/api/v1/ports", headers: API.auth, body: other)
            let ids = [first["id"] as! String, second["id"] as! String]
            _ = try await Self.status(client, .post, "/api/v1/ip-addresses", headers: API.auth, body: API.json(["address": "127.0.0.9"]))
            let (conflict, error) = try await Self.status(
                client, .put, "/api/v1/ip-addresses/127.0.0.9?dryRun=true", headers: API.auth, body: API.json(["ports": ids]))
            #expect(conflict == 409)
            #expect(API.error(error)["code"] as? String == "port_conflict")
            let (fine, _) = try await Self.status(
                client, .put, "/api/v1/ip-addresses/127.0.0.9?dryRun=true", headers: API.auth, body: API.json(["ports": [ids[0]]]))
            #expect(fine == 200)
            #expect(try harness.store.bindings().entry("127.0.0.9")?.ports == [])
        }
    }

    @Test("a user's password and display name change; the old password no longer works")
    func updateUser() async throws {
        try await API.withAPI { harness, client in
            _ = try await Self.status(client, .post, "/api/v1/domains", headers: API.auth, body: API.json(["name": "example.com"]))
            _ = try await Self.status(
                client, .post, "/api/v1/domains/example.com/users", headers: API.auth,
                body: API.json(["name": "alice", "password": "first-password-1"]))
            let (status, body) = try await Self.status(
                client, .put, "/api/v1/domains/example.com/users/alice", headers: API.auth,
                body: API.json(["password": "second-password-2", "displayName": "Alice L"]))
            #expect(status == 200)
            #expect(body["displayName"] as? String == "Alice L")
            #expect(body["password"] == nil)
            #expect(harness.store.directory.verify(address: "alice@example.com", password: "second-password-2"))
            #expect(!harness.store.directory.verify(address: "alice@example.com", password: "first-password-1"))
            let (missing, _) = try await Self.status(
                client, .put, "/api/v1/domains/example.com/users/bob", headers: API.auth, body: API.json(["displayName": "B"]))
            #expect(missing == 404)
            let (short, _) = try await Self.status(
                client, .put, "/api/v1/domains/example.com/users/alice", headers: API.auth, body: API.json(["password": "x"]))
            #expect(short == 422)
        }
    }

    @Test("every response forbids framing and sniffing; API answers are not cached; scripts get no Basic prompt")
    func headers() async throws {
        try await API.withAPI { _, client in
            try await client.execute(uri: "/api/v1/ports", method: .get, headers: API.auth) { response in
                #expect(response.headers[HTTPField.Name("X-Frame-Options")!] == "DENY")
                #expect(response.headers[.xContentTypeOptions] == "nosniff")
                #expect(response.headers[.cacheControl] == "no-store")
                let policy = try #require(response.headers[.contentSecurityPolicy])
                #expect(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"))
                #expect(!policy.contains("unsafe-inline"))
            }
            try await client.execute(uri: "/api/v1/ports", method: .get) { response in
                #expect(response.status == .unauthorized)
                #expect(response.headers[.wwwAuthenticate] != nil, "curl and the CLI are told to use Basic")
                #expect(response.headers[HTTPField.Name("X-Frame-Options")!] == "DENY", "error responses too")
            }
            try await client.execute(
                uri: "/api/v1/ports", method: .get, headers: [HTTPField.Name("Sec-Fetch-Mode")!: "cors"]
            ) { response in
                #expect(response.status == .unauthorized)
                #expect(response.headers[.wwwAuthenticate] == nil, "the page's own login form, not the browser's dialog")
            }
        }
    }

    @Test("DNS rebinding: only IP addresses, localhost and the server's own names are answered")
    func hostCheck() async throws {
        try await API.withAPI(serverName: "mx.example.com") { _, client in
            func status(_ host: String, _ path: String = "/api/v1/ports") async throws -> Int {
                var headers = API.auth
                headers[HTTPField.Name("Host")!] = host
                return try await Self.status(client, .get, path, headers: headers).0
            }
            #expect(try await status("evil.example:8080") == 421)
            #expect(try await status("evil.example:8080", "/") == 421)
            #expect(try await status("evil.example", "/healthz") == 200, "health checks by any name")
            for allowed in ["127.0.0.1:8080", "[::1]:8080", "localhost:8080", "MX.example.com", "mx.example.com.:8080"] {
                #expect(try await status(allowed) == 200, "\(allowed)")
            }
            // An IP address's host name and a domain are the server's names too.
            _ = try await Self.status(
                client, .post, "/api/v1/ip-addresses", headers: API.auth,
                body: API.json(["address": "127.0.0.9", "hostname": "mx2.example.net"]))
            _ = try await Self.status(client, .post, "/api/v1/domains", headers: API.auth, body: API.json(["name": "example.org"]))
            #expect(try await status("mx2.example.net:8080") == 200)
            #expect(try await status("example.org") == 200)
        }
    }

    @Test("no port can be assigned over the admin API's own address and port, dry run or not")
    func adminEndpointReserved() async throws {
        let reserved = try #require(ReservedEndpoint(host: "127.0.0.1", port: 18080, owner: "the admin API's listener"))
        try await API.withAPI(reserved: reserved) { harness, client in
            _ = try await Self.status(client, .post, "/api/v1/ip-addresses", headers: API.auth, body: API.json(["address": "127.0.0.1"]))
            for path in ["/api/v1/ports?dryRun=true", "/api/v1/ports"] {
                let (status, body) = try await Self.status(
                    client, .post, path, headers: API.auth,
                    body: API.json(["name": "Web", "protocol": "smtp", "encryption": "none", "port": 18080, "assignedTo": ["127.0.0.1"]]))
                #expect(status == 409)
                #expect(API.error(body)["code"] as? String == "port_conflict")
                #expect((API.error(body)["message"] as? String)?.contains("admin API") == true)
            }
            #expect(try harness.store.bindings().ports.isEmpty)
            let (created, _) = try await Self.status(
                client, .post, "/api/v1/ports", headers: API.auth,
                body: API.json(["name": "Web", "protocol": "smtp", "encryption": "none", "port": 18081, "assignedTo": ["127.0.0.1"]]))
            #expect(created == 201)
        }
    }

    @Test("summary: the navigation counts in one answer")
    func summary() async throws {
        try await API.withAPI { _, client in
            _ = try await Self.status(
                client, .post, "/api/v1/ports", headers: API.auth,
                body: API.json(["name": "Lonely", "protocol": "smtp", "encryption": "none", "port": 2600]))
            _ = try await Self.status(client, .post, "/api/v1/domains", headers: API.auth, body: API.json(["name": "example.org"]))
            let (status, body) = try await Self.status(client, .get, "/api/v1/summary", headers: API.auth)
            #expect(status == 200)
            #expect(body["ports"] as? Int == 1)
            #expect(body["portsWithWarnings"] as? Int == 1, "assigned to no IP address")
            #expect(body["domains"] as? Int == 1)
            #expect(body["users"] as? Int == 0)
            #expect(body["queue"] as? Int == 0)
            #expect(body["listeners"] as? Int == 0)
            #expect(Set(body.keys) == [
                "ipAddresses", "ports", "portsWithWarnings", "certificates", "certificatesWithProblems", "domains", "users",
                "queue", "listeners", "listenersFailed",
            ])
        }
    }
}
