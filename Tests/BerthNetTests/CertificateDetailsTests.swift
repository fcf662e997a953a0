import BerthTestSupport
import BerthCore
import Foundation
import Testing
@testable import BerthNet

@Suite("Certificate details: issuer, Berth's own default certificate")
struct CertificateDetailsTests {
    static let openssl = executable("openssl")

    static func withDirectory(_ body: (TempDirectory) throws -> Void) throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        try body(directory)
    }

    static func generated(_ hostname: String, in directory: TempDirectory) throws -> LoadedCertificate {
        let path = directory.file("\(hostname).pem")
        try CertificateLoader.generateSelfSigned(hostname: hostname, at: path)
        return try CertificateLoader.load(CertificateSource(certificatePath: path))
    }

    @Test("a certificate Berth generated is recognised, with its issuer")
    func berthsOwn() throws {
        try Self.withDirectory { directory in
            let loaded = try Self.generated("mx.example.com", in: directory)
            #expect(loaded.isBerthSelfSigned)
            #expect(loaded.issuer == loaded.info.subject, "self-signed: the issuer is the subject")
            #expect(loaded.issuer?.contains("O=Berth self-signed") == true, "\(loaded.issuer ?? "nil")")
            #expect(loaded.covers("mx.example.com"))
            #expect(loaded.covers("MX.example.com"))
            #expect(loaded.covers("localhost"))
            #expect(!loaded.covers("mail.example.com"))
        }
    }

    @Test("Berth's default certificate is renewed for a new host name and 30 days before it expires")
    func renewal() throws {
        try Self.withDirectory { directory in
            let loaded = try Self.generated("mx.example.com", in: directory)
            let now = Date()
            #expect(loaded.berthSelfSignedRenewalReason(hostname: "mx.example.com", now: now) == nil)
            let renamed = try #require(loaded.berthSelfSignedRenewalReason(hostname: "mail.example.org", now: now))
            #expect(renamed.contains("mail.example.org") && renamed.contains("mx.example.com"), "\(renamed)")
            let days = Double(CertificateLoader.selfSignedValidityDays)
            #expect(loaded.berthSelfSignedRenewalReason(hostname: "mx.example.com", now: now.addingTimeInterval((days - 31) * 86400)) == nil)
            let soon = try #require(loaded.berthSelfSignedRenewalReason(
                hostname: "mx.example.com", now: now.addingTimeInterval((days - 29) * 86400)))
            #expect(soon.hasPrefix("it expires on"), "\(soon)")
            let late = try #require(loaded.berthSelfSignedRenewalReason(
                hostname: "mx.example.com", now: now.addingTimeInterval((days + 1) * 86400)))
            #expect(late.hasPrefix("it expired on"), "\(late)")
        }
    }

    @Test(
        "an admin's certificate is never Berth's, even self-signed, and never renewed",
        .enabled(if: openssl != nil, "needs the openssl command"),
        arguments: ["/CN=mx.example.com", "/O=Berth self-signed inc/CN=mx.example.com", "/O=Example/CN=mx.example.com"])
    func adminsOwn(subject: String) throws {
        let openssl = try #require(Self.openssl)
        try Self.withDirectory { directory in
            let certificate = directory.file("admin.crt"), key = directory.file("admin.key")
            let made = try run(openssl, [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                "-out", certificate, "-days", "10", "-subj", subject, "-addext", "subjectAltName=DNS:mx.example.com",
            ])
            try #require(made.status == 0, "openssl req failed: \(made.stderr)")
            let loaded = try CertificateLoader.load(CertificateSource(certificatePath: certificate, privateKeyPath: key))
            #expect(loaded.info.selfSigned)
            #expect(!loaded.isBerthSelfSigned)
            #expect(loaded.issuer?.contains("CN=mx.example.com") == true)
            #expect(loaded.berthSelfSignedRenewalReason(hostname: "other.example.org") == nil, "expires in 10 days, other name")
        }
    }
}
