import Foundation
import Testing
@testable import BerthCore

@Suite("Certificate library: model and request body")
struct LibraryCertificateTests {
    static func decode(_ json: String) throws -> LibraryCertificateBody {
        try JSONDecoder().decode(LibraryCertificateBody.self, from: Data(json.utf8))
    }

    @Test("bodies the API accepts", arguments: [
        (#"{"certificatePath": "/etc/ssl/mail.pem"}"#, LibraryCertificateBody(certificatePath: "/etc/ssl/mail.pem")),
        (#"{"certificatePath": "a.pem", "privateKeyPath": "a.key"}"#,
         LibraryCertificateBody(certificatePath: "a.pem", privateKeyPath: "a.key")),
        (#"{"certificatePath": "a.p12", "certificatePassword": "pw"}"#,
         LibraryCertificateBody(certificatePath: "a.p12", certificatePassword: "pw")),
        (#"{"certificatePath": "a.pem", "privateKeyPath": null, "certificatePassword": ""}"#,
         LibraryCertificateBody(certificatePath: "a.pem")),
        (#"{"certificatePath": "a.pem", "privateKeyPath": ""}"#, LibraryCertificateBody(certificatePath: "a.pem")),
    ])
    func accepted(_ row: (String, LibraryCertificateBody)) throws {
        #expect(try Self.decode(row.0) == row.1)
    }

    @Test("bodies the API refuses, with the field named", arguments: [
        (#"{"certificatePath": "a.pem", "certificatepath": "b.pem"}"#, "certificatepath"),
        (#"{"certificatePath": "a.pem", "id": "3"}"#, "id"),
        (#"{"privateKeyPath": "a.key"}"#, "certificatePath"),
        (#"{"certificatePath": null}"#, "certificatePath"),
        (#"{"certificatePath": 7}"#, "certificatePath"),
    ])
    func refused(_ row: (String, String)) {
        do {
            _ = try Self.decode(row.0)
            Issue.record("\(row.0) was accepted")
        } catch let DecodingError.dataCorrupted(context) {
            #expect(context.codingPath.last?.stringValue == row.1)
        } catch let DecodingError.keyNotFound(key, _) {
            #expect(key.stringValue == row.1)
        } catch let DecodingError.valueNotFound(_, context), let DecodingError.typeMismatch(_, context) {
            #expect(context.codingPath.last?.stringValue == row.1)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("paths are made absolute against the server's directory, as a port's are")
    func paths() throws {
        let body = try LibraryCertificateBody(certificatePath: "certs/../tls/./mail.pem", privateKeyPath: "mail.key")
            .resolvingPaths(against: "/srv/berth")
        #expect(body.certificatePath == "/srv/berth/tls/mail.pem")
        #expect(body.privateKeyPath == "/srv/berth/mail.key")
        let absolute = try LibraryCertificateBody(certificatePath: "/etc//ssl/mail.pem").resolvingPaths(against: "/srv")
        #expect(absolute.certificatePath == "/etc/ssl/mail.pem")
        #expect(absolute.privateKeyPath == nil)
        for empty in ["", "  "] {
            let error = Fixture.refusal { _ = try LibraryCertificateBody(certificatePath: empty).resolvingPaths(against: "/srv") }
            #expect(error?.code == .validationFailed)
            #expect(error?.field == "certificatePath")
        }
    }

    @Test("the loader's source leaves empty optional fields out")
    func source() {
        let stored = LibraryCertificate(id: "4", certificatePath: "/a.p12", privateKeyPath: "", certificatePassword: "pw")
        #expect(stored.source == CertificateSource(certificatePath: "/a.p12", privateKeyPath: nil, password: "pw"))
        let plain = LibraryCertificate(id: "5", certificatePath: "/a.pem", privateKeyPath: "/a.key", certificatePassword: "")
        #expect(plain.source == CertificateSource(certificatePath: "/a.pem", privateKeyPath: "/a.key", password: nil))
    }

    @Test("the ports naming a certificate file are those whose own TLS certificate it is")
    func portsNaming() {
        let bindings = Bindings(ports: [
            Fixture.port("1", "SMTP SSL", .smtp, .ssl, number: 465, certificatePath: "/etc/ssl/mail.pem"),
            Fixture.port("2", "Submission", .submission, .tls, number: 587, certificatePath: "/etc/ssl/mail.pem",
                         privateKeyPath: "/etc/ssl/mail.key"),
            Fixture.port("3", "Other", .smtp, .ssl, number: 2465, certificatePath: "/etc/ssl/other.pem"),
            Fixture.port("4", "Default", .smtp, .tls, number: 25),
        ])
        #expect(bindings.ports(namingCertificate: "/etc/ssl/mail.pem").map(\.id) == ["1", "2"])
        #expect(bindings.ports(namingCertificate: "/etc/ssl/other.pem").map(\.id) == ["3"])
        #expect(bindings.ports(namingCertificate: "/etc/ssl/none.pem").isEmpty)
    }
}
