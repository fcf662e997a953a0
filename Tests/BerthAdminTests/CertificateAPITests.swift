import BerthTestSupport
import BerthCore
import BerthNet
import BerthStore
import Foundation
import Hummingbird
import HummingbirdBcrypt
import HummingbirdTesting
import Logging
import Prometheus
import Testing
@testable import BerthAdmin

/// `/api/v1/certificates` on the router, no sockets: save-time validation with a port's
/// certificate rules, what a response shows (and never shows), and the delete refusal.
@Suite("Admin API: certificate library")
struct CertificateAPITests {
    static let password = "admin-test-pw"
    static let passwordHash = Bcrypt.hash(password, cost: 4)
    static let openssl = executable("openssl")

    /// A store in a fresh directory, the router over it, and the directory for files.
    struct Harness: Sendable {
        let directory: TempDirectory
        let store: ConfigStore
    }

    static func withAPI(
        serverName: String = "", reserved: ReservedEndpoint? = nil,
        _ body: @escaping @Sendable (Harness, any TestClientProtocol) async throws -> Void
    ) async throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        let store = try ConfigStore(path: directory.file("berth.sqlite"))
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let defaultPath = directory.file("certs/default.pem")
        try CertificateLoader.generateSelfSigned(hostname: "mx.example.com", at: defaultPath)
        let api = AdminAPI(
            store: store, registry: ListenerRegistry(), defaultCertificate: CertificateSource(certificatePath: defaultPath),
            metrics: PrometheusCollectorRegistry(), passwordHash: passwordHash, authGuard: AuthGuard(logger: logger),
            serverName: serverName, reserved: reserved)
        let app = Application(router: api.router(), logger: logger)
        let harness = Harness(directory: directory, store: store)
        try await app.test(.router) { client in try await body(harness, client) }
    }

    static var auth: HTTPFields {
        [.authorization: "Basic " + Data("admin:\(password)".utf8).base64EncodedString(), .contentType: "application/json"]
    }

    /// Status and parsed JSON of one call.
    static func call(
        _ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, _ body: String? = nil
    ) async throws -> (status: Int, json: Any?) {
        try await client.execute(
            uri: path, method: method, headers: auth, body: body.map { ByteBuffer(string: $0) }
        ) { response in
            let data = Data(response.body.readableBytesView)
            return (Int(response.status.code), data.isEmpty ? nil : try? JSONSerialization.jsonObject(with: data))
        }
    }

    static func json(_ object: [String: Any]) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    static func error(_ json: Any?) -> [String: Any] {
        ((json as? [String: Any])?["error"] as? [String: Any]) ?? [:]
    }

    @Test("hostnames: the IP host names and domains the certificate covers, wildcards per RFC 6125")
    func hostnamesCovered() async throws {
        try await Self.withAPI { harness, client in
            let path = harness.directory.file("tls/wild.pem")
            try #require(Self.openssl != nil)
            let key = harness.directory.file("tls/wild.key")
            try FileManager.default.createDirectory(atPath: harness.directory.file("tls"), withIntermediateDirectories: true)
            try run(Self.openssl!, [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                "-out", path, "-days", "30", "-subj", "/CN=*.example.net",
                "-addext", "subjectAltName=DNS:*.example.net,DNS:example.org",
            ])
            _ = try await Self.call(client, .post, "/api/v1/domains", Self.json(["name": "example.org"]))
            _ = try await Self.call(client, .post, "/api/v1/domains", Self.json(["name": "other.com"]))
            _ = try await Self.call(
                client, .post, "/api/v1/ip-addresses", Self.json(["address": "127.0.0.9", "hostname": "mx.example.net"]))
            _ = try await Self.call(
                client, .post, "/api/v1/ip-addresses", Self.json(["address": "127.0.0.10", "hostname": "a.b.example.net"]))
            let (status, json) = try await Self.call(
                client, .post, "/api/v1/certificates", Self.json(["certificatePath": path, "privateKeyPath": key]))
            #expect(status == 201, "\(String(describing: json))")
            #expect((json as? [String: Any])?["hostnames"] as? [String] == ["example.org", "mx.example.net"])
        }
    }

    @Test("POST, GET, list and DELETE; the response shows the certificate, never the password")
    func lifecycle() async throws {
        try await Self.withAPI { harness, client in
            let path = harness.directory.file("tls/mail.pem")
            try CertificateLoader.generateSelfSigned(hostname: "mail.example.org", at: path)
            let (status, json) = try await Self.call(client, .post, "/api/v1/certificates", Self.json(["certificatePath": path]))
            #expect(status == 201)
            let made = try #require(json as? [String: Any])
            let id = try #require(made["id"] as? String)
            #expect(made["certificatePath"] as? String == path)
            #expect(made["privateKeyPath"] is NSNull, "null, not left out")
            #expect(made["dnsNames"] as? [String] == ["mail.example.org", "localhost"])
            #expect((made["subject"] as? String)?.contains("CN=mail.example.org") == true)
            #expect(made["issuer"] as? String == made["subject"] as? String)
            #expect(made["selfSigned"] as? Bool == true)
            #expect(made["notAfter"] is String)
            #expect(made["usedBy"] as? [String] == ["sni"])
            #expect(made["certificatePassword"] == nil)
            #expect(Set(made.keys) == [
                "id", "certificatePath", "privateKeyPath", "subject", "dnsNames", "issuer", "notAfter", "selfSigned",
                "usedBy", "hostnames", "warnings",
            ])

            let (listed, list) = try await Self.call(client, .get, "/api/v1/certificates")
            #expect(listed == 200)
            #expect((list as? [[String: Any]])?.map { $0["id"] as? String } == [id])
            let (got, one) = try await Self.call(client, .get, "/api/v1/certificates/\(id)")
            #expect(got == 200)
            #expect((one as? [String: Any])?["certificatePath"] as? String == path)

            #expect(try await Self.call(client, .delete, "/api/v1/certificates/\(id)").status == 204)
            let (gone, missing) = try await Self.call(client, .get, "/api/v1/certificates/\(id)")
            #expect(gone == 404)
            #expect(Self.error(missing)["code"] as? String == "not_found")
            #expect(try await Self.call(client, .delete, "/api/v1/certificates/\(id)").status == 404)
            #expect(try harness.store.libraryCertificates().isEmpty)
        }
    }

    @Test("a file that does not load is refused at save time with the reason, and nothing is stored")
    func badFiles() async throws {
        try await Self.withAPI { harness, client in
            try CertificateLoader.generateSelfSigned(hostname: "a.example", at: harness.directory.file("a.pem"))
            try CertificateLoader.generateSelfSigned(hostname: "b.example", at: harness.directory.file("b.pem"))
            let blocksOfA = pemBlocks(try String(contentsOfFile: harness.directory.file("a.pem"), encoding: .utf8))
            let blocksOfB = pemBlocks(try String(contentsOfFile: harness.directory.file("b.pem"), encoding: .utf8))
            let certificateOnly = try harness.directory.write(
                "cert-only.pem", try #require(blocksOfA.first { $0.label == "CERTIFICATE" }).block)
            let otherKey = try harness.directory.write(
                "other.key", try #require(blocksOfB.first { $0.label.hasSuffix("PRIVATE KEY") }).block)
            let notPEM = try harness.directory.write("junk.pem", "not a certificate\n")
            let cases: [(String, [String: Any], String)] = [
                ("missing file", ["certificatePath": harness.directory.file("nope.pem")], "does not exist"),
                ("not PEM", ["certificatePath": notPEM], "no PEM certificate"),
                ("no key", ["certificatePath": certificateOnly], "holds no private key"),
                ("key of another certificate", ["certificatePath": certificateOnly, "privateKeyPath": otherKey], "does not match"),
                ("missing key file", ["certificatePath": certificateOnly, "privateKeyPath": harness.directory.file("no.key")],
                 "does not exist"),
            ]
            for (label, body, reason) in cases {
                let (status, json) = try await Self.call(client, .post, "/api/v1/certificates", Self.json(body))
                let error = Self.error(json)
                #expect(status == 422, "\(label)")
                #expect(error["code"] as? String == "bad_certificate", "\(label)")
                #expect(error["field"] as? String == "certificatePath", "\(label)")
                #expect((error["message"] as? String)?.contains(reason) == true, "\(label): \(error["message"] ?? "")")
            }
            #expect(try harness.store.libraryCertificates().isEmpty)
        }
    }

    @Test("bodies are strict like every other body", arguments: [
        (#"{"certificatePath": "/a.pem", "certificatepath": "/b.pem"}"#, 422, "validation_failed", "certificatepath"),
        (#"{"privateKeyPath": "/a.key"}"#, 422, "validation_failed", "certificatePath"),
        (#"{"certificatePath": ""}"#, 422, "validation_failed", "certificatePath"),
        (#"{"certificatePath": "/a.pem", "certificatePath": "/b.pem"}"#, 422, "validation_failed", "certificatePath"),
        (#"{"certificatePath": 7}"#, 422, "validation_failed", "certificatePath"),
        (#"{"certificatePath": "/a.pem""#, 400, "invalid_json", nil),
    ] as [(String, Int, String, String?)])
    func strictBodies(_ row: (String, Int, String, String?)) async throws {
        try await Self.withAPI { harness, client in
            let (status, json) = try await Self.call(client, .post, "/api/v1/certificates", row.0)
            #expect(status == row.1)
            #expect(Self.error(json)["code"] as? String == row.2)
            #expect(Self.error(json)["field"] as? String == row.3)
            #expect(try harness.store.libraryCertificates().isEmpty)
        }
    }

    @Test("a relative path is made absolute against the server's working directory")
    func relativePath() async throws {
        try await Self.withAPI { harness, client in
            let path = harness.directory.file("rel.pem")
            try CertificateLoader.generateSelfSigned(hostname: "rel.example", at: path)
            let depth = FileManager.default.currentDirectoryPath.split(separator: "/").count
            let relative = String(repeating: "../", count: depth) + "." + path
            let (status, json) = try await Self.call(client, .post, "/api/v1/certificates", Self.json(["certificatePath": relative]))
            #expect(status == 201)
            #expect((json as? [String: Any])?["certificatePath"] as? String == path)
            #expect(try harness.store.libraryCertificates().map(\.certificatePath) == [path])
        }
    }

    @Test("a certificate a port names is used by it and cannot be deleted; the same file twice is a conflict")
    func usedByPort() async throws {
        try await Self.withAPI { harness, client in
            let path = harness.directory.file("shared.pem")
            try CertificateLoader.generateSelfSigned(hostname: "shared.example", at: path)
            let portID: String = try harness.store.updateBindings { bindings, newPortID in
                let id = try newPortID()
                try bindings.addPort(id: id, PortPatch(
                    name: "SMTP SSL", protocol: .smtp, encryption: .ssl, port: 465, certificatePath: path))
                return id
            }
            let (status, json) = try await Self.call(client, .post, "/api/v1/certificates", Self.json(["certificatePath": path]))
            #expect(status == 201)
            let id = try #require((json as? [String: Any])?["id"] as? String)
            #expect((json as? [String: Any])?["usedBy"] as? [String] == [portID, "sni"])

            let (again, twice) = try await Self.call(client, .post, "/api/v1/certificates", Self.json(["certificatePath": path]))
            #expect(again == 409)
            #expect(Self.error(twice)["code"] as? String == "conflict")

            let (refused, body) = try await Self.call(client, .delete, "/api/v1/certificates/\(id)")
            #expect(refused == 409)
            #expect(Self.error(body)["code"] as? String == "conflict")
            #expect((Self.error(body)["message"] as? String)?.contains("'SMTP SSL'") == true)
            #expect(try harness.store.libraryCertificates().map(\.id) == [id])
        }
    }

    @Test(
        "a certificate expiring within 30 days is flagged; a PKCS#12 password is stored, never shown",
        .enabled(if: openssl != nil, "needs the openssl command"))
    func expiryAndPassword() async throws {
        let openssl = try #require(Self.openssl)
        try await Self.withAPI { harness, client in
            let certificate = harness.directory.file("soon.crt"), key = harness.directory.file("soon.key")
            let bundle = harness.directory.file("soon.p12")
            let made = try run(openssl, [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                "-out", certificate, "-days", "10", "-subj", "/CN=soon.example", "-addext", "subjectAltName=DNS:soon.example",
            ])
            try #require(made.status == 0, "\(made.stderr)")
            let export = try run(openssl, [
                "pkcs12", "-export", "-in", certificate, "-inkey", key, "-out", bundle, "-passout", "pass:p12-secret",
            ])
            try #require(export.status == 0, "\(export.stderr)")

            let (wrong, refusal) = try await Self.call(
                client, .post, "/api/v1/certificates", Self.json(["certificatePath": bundle, "certificatePassword": "nope"]))
            #expect(wrong == 422)
            #expect((Self.error(refusal)["message"] as? String)?.contains("wrong password") == true)

            let (status, json) = try await Self.call(
                client, .post, "/api/v1/certificates", Self.json(["certificatePath": bundle, "certificatePassword": "p12-secret"]))
            #expect(status == 201)
            let view = try #require(json as? [String: Any])
            #expect((view["warnings"] as? [String])?.contains { $0.hasPrefix("certificate expires in") } == true, "\(view)")
            #expect(view["issuer"] as? String == "CN=soon.example")
            let text = String(decoding: try JSONSerialization.data(withJSONObject: view), as: UTF8.self)
            #expect(!text.contains("p12-secret"))
            #expect(try harness.store.libraryCertificates().first?.certificatePassword == "p12-secret")
        }
    }
}
