import BerthTestSupport
import BerthCore
import Foundation
import Testing
@testable import BerthNet

@Suite("CertificateLoader")
struct CertificateLoaderTests {
    static let openssl = executable("openssl")

    static func withDirectory(_ body: (TempDirectory) throws -> Void) throws {
        let directory = try TempDirectory()
        defer { directory.remove() }
        try body(directory)
    }

    /// The error text `load` throws for `source`, or nil if it loads.
    static func loadError(_ source: CertificateSource) -> String? {
        do {
            _ = try CertificateLoader.load(source)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test("a generated self-signed certificate loads")
    func selfSigned() throws {
        try Self.withDirectory { directory in
            let path = directory.file("tls/self-signed.pem")
            try CertificateLoader.generateSelfSigned(hostname: "mx.example.com", at: path)
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            #expect(mode == 0o600, "the file holds the private key")
            let loaded = try CertificateLoader.load(CertificateSource(certificatePath: path))
            #expect(loaded.info.selfSigned)
            #expect(loaded.info.dnsNames.contains("mx.example.com"))
            #expect(loaded.info.subject.contains("mx.example.com"))
            #expect(loaded.info.notAfter > Date().addingTimeInterval(30 * 86400))
            #expect(loaded.source == CertificateSource(certificatePath: path))
            #expect(loaded.fingerprint == FileFingerprint.of(CertificateSource(certificatePath: path)))
        }
    }

    @Test("a key that does not match the certificate is refused", arguments: [false, true])
    func mismatchedKey(separateKeyFile: Bool) throws {
        try Self.withDirectory { directory in
            try CertificateLoader.generateSelfSigned(hostname: "a.example", at: directory.file("a.pem"))
            try CertificateLoader.generateSelfSigned(hostname: "b.example", at: directory.file("b.pem"))
            let a = pemBlocks(try String(contentsOfFile: directory.file("a.pem"), encoding: .utf8))
            let b = pemBlocks(try String(contentsOfFile: directory.file("b.pem"), encoding: .utf8))
            let certificateOfA = try #require(a.first { $0.label == "CERTIFICATE" }).block
            let keyOfB = try #require(b.first { $0.label.hasSuffix("PRIVATE KEY") }).block
            let source: CertificateSource
            if separateKeyFile {
                source = CertificateSource(
                    certificatePath: try directory.write("cert.pem", certificateOfA),
                    privateKeyPath: try directory.write("key.pem", keyOfB))
            } else {
                source = CertificateSource(certificatePath: try directory.write("mixed.pem", certificateOfA + keyOfB))
            }
            let error = try #require(Self.loadError(source))
            #expect(error.contains("does not match"), "\(error)")
        }
    }

    @Test("the key may live in its own file (privateKeyPath)")
    func separateKeyFile() throws {
        try Self.withDirectory { directory in
            try CertificateLoader.generateSelfSigned(hostname: "mx.example.com", at: directory.file("both.pem"))
            let blocks = pemBlocks(try String(contentsOfFile: directory.file("both.pem"), encoding: .utf8))
            let certificate = try directory.write("cert.pem", try #require(blocks.first { $0.label == "CERTIFICATE" }).block)
            let key = try directory.write("key.pem", try #require(blocks.first { $0.label.hasSuffix("PRIVATE KEY") }).block)
            let loaded = try CertificateLoader.load(CertificateSource(certificatePath: certificate, privateKeyPath: key))
            #expect(loaded.info.dnsNames.contains("mx.example.com"))

            let noKey = try #require(Self.loadError(CertificateSource(certificatePath: certificate)))
            #expect(noKey.contains("holds no private key"), "\(noKey)")
            #expect(noKey.contains("privateKeyPath"), "the message names the fix: \(noKey)")

            let keyIsCertificate = try #require(Self.loadError(CertificateSource(certificatePath: certificate, privateKeyPath: certificate)))
            #expect(keyIsCertificate.contains("no PEM private key"), "\(keyIsCertificate)")

            let missingKey = try #require(Self.loadError(CertificateSource(certificatePath: certificate, privateKeyPath: directory.file("gone.key"))))
            #expect(missingKey.contains("does not exist"), "\(missingKey)")
            #expect(missingKey.contains("gone.key"), "\(missingKey)")
        }
    }

    struct BadFile: Sendable, CustomTestStringConvertible {
        var label: String
        /// nil: the file is not created.
        var contents: [UInt8]?
        var name = "cert.pem"
        var message: String
        var testDescription: String { label }
    }

    static let badFiles: [BadFile] = [
        .init(label: "missing", contents: nil, message: "does not exist"),
        .init(label: "empty", contents: [], message: "is empty"),
        .init(label: "garbage", contents: Array("this is not a certificate\n".utf8), message: "holds no PEM certificate"),
        .init(label: "binary garbage", contents: (0..<2048).map { UInt8(truncatingIfNeeded: $0 &* 31) }, message: "holds no PEM certificate"),
        .init(label: "over 1 MiB", contents: Array(repeating: UInt8(ascii: "A"), count: (1 << 20) + 1), message: "larger than 1 MiB"),
        .init(label: "PKCS#12 garbage", contents: Array("not pkcs12".utf8), name: "cert.p12", message: "PKCS#12"),
        .init(label: "truncated PEM", contents: Array("-----BEGIN CERTIFICATE-----\nMIIB\n".utf8), message: "holds no PEM certificate"),
    ]

    @Test("unusable files are refused with a clear reason", arguments: badFiles)
    func badFile(_ row: BadFile) throws {
        try Self.withDirectory { directory in
            let path = directory.file(row.name)
            if let contents = row.contents {
                #expect(FileManager.default.createFile(atPath: path, contents: Data(contents)))
            }
            let error = try #require(Self.loadError(CertificateSource(certificatePath: path)))
            #expect(error.contains(row.message), "\(error)")
            #expect(error.contains(path) || row.name.hasSuffix(".p12"), "the message names the file: \(error)")
        }
    }

    @Test("PKCS#12 with a password", .enabled(if: openssl != nil, "needs the openssl command to build a PKCS#12 file"))
    func pkcs12() throws {
        let openssl = try #require(Self.openssl)
        try Self.withDirectory { directory in
            let pem = directory.file("both.pem")
            try CertificateLoader.generateSelfSigned(hostname: "p12.example.com", at: pem)
            let bundle = directory.file("bundle.p12")
            let export = try run(openssl, ["pkcs12", "-export", "-in", pem, "-inkey", pem, "-out", bundle, "-passout", "pass:s3cret-pass", "-name", "berth"])
            try #require(export.status == 0, "openssl pkcs12 -export failed: \(export.stderr)")

            let loaded = try CertificateLoader.load(CertificateSource(certificatePath: bundle, password: "s3cret-pass"))
            #expect(loaded.info.dnsNames.contains("p12.example.com"))
            #expect(loaded.info.selfSigned)

            for wrong in [nil, "wrong-pass"] as [String?] {
                let error = try #require(Self.loadError(CertificateSource(certificatePath: bundle, password: wrong)))
                #expect(error.contains("wrong password"), "\(error)")
                #expect(!error.contains("s3cret-pass"))
            }
        }
    }

    @Test("an encrypted PEM key with certificatePassword", .enabled(if: openssl != nil, "needs the openssl command to encrypt a key"))
    func encryptedKey() throws {
        let openssl = try #require(Self.openssl)
        try Self.withDirectory { directory in
            let pem = directory.file("both.pem")
            try CertificateLoader.generateSelfSigned(hostname: "enc.example.com", at: pem)
            let blocks = pemBlocks(try String(contentsOfFile: pem, encoding: .utf8))
            let certificate = try directory.write("cert.pem", try #require(blocks.first { $0.label == "CERTIFICATE" }).block)
            let key = directory.file("key.enc.pem")
            let encrypt = try run(openssl, ["pkcs8", "-topk8", "-in", pem, "-out", key, "-v2", "aes-256-cbc", "-passout", "pass:key-pass-1"])
            try #require(encrypt.status == 0, "openssl pkcs8 failed: \(encrypt.stderr)")

            let loaded = try CertificateLoader.load(CertificateSource(certificatePath: certificate, privateKeyPath: key, password: "key-pass-1"))
            #expect(loaded.info.dnsNames.contains("enc.example.com"))
            let error = try #require(Self.loadError(CertificateSource(certificatePath: certificate, privateKeyPath: key, password: "nope")))
            #expect(error.contains("cannot read the private key"), "\(error)")
        }
    }

    @Test("every TLS context prefers the server's cipher order (reached through swift-nio-ssl's SSL_CTX)")
    func serverCipherPreference() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("berth-order-\(UUID()).pem").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try CertificateLoader.generateSelfSigned(hostname: "mx.example.com", at: path)
        let loaded = try CertificateLoader.load(CertificateSource(certificatePath: path))
        #expect(CertificateLoader.preferServerCiphers(loaded.context), "swift-nio-ssl no longer has NIOSSLContext.sslContext")
    }
}
