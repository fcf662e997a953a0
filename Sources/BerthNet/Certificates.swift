import BerthCore
import CBerthTLS
import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import SwiftASN1
import X509

/// What the admin sees of a certificate (BINDINGS.md `certificate`).
public struct CertificateInfo: Codable, Sendable, Hashable {
    public var subject: String
    public var dnsNames: [String]
    public var notAfter: Date
    public var selfSigned: Bool
}

/// A certificate chain and its key, loaded and checked, with the TLS context built from it.
public struct LoadedCertificate: Sendable {
    public var source: CertificateSource
    public var info: CertificateInfo
    public var context: NIOSSLContext
    public var chain: [NIOSSLCertificate]
    public var key: NIOSSLPrivateKey
    /// Modification times of the files, to notice when they change on disk.
    public var fingerprint: FileFingerprint
}

public struct CertificateError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Size and modification time of the files behind a certificate source.
public struct FileFingerprint: Sendable, Hashable {
    var parts: [String]

    public static func of(_ source: CertificateSource) -> FileFingerprint {
        FileFingerprint(parts: [source.certificatePath, source.privateKeyPath].compactMap { $0 }.map { path in
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? -1
            let size = (attributes?[.size] as? Int) ?? -1
            return "\(path)|\(modified)|\(size)"
        })
    }
}

/// Loads certificates: PEM (chain, key in the same file or `privateKeyPath`, optionally
/// encrypted) and PKCS#12 with a password. Refuses what a TLS handshake would fail on:
/// unreadable files, no certificate, no key, a key that does not match the certificate.
public enum CertificateLoader {
    /// Upper bound on a certificate or key file; real ones are a few KiB.
    public static let maxFileSize = 1 << 20

    /// TLS 1.2 suites offered: forward secrecy and AEAD only (no CBC, no SHA-1 MACs, no
    /// static RSA key exchange), per RFC 9325 §4.2. TLS 1.3 suites are all AEAD.
    public static let cipherSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    /// Loads `source`; with a library, the context picks a library certificate by SNI.
    public static func load(_ source: CertificateSource, library: CertificateLibrary? = nil) throws -> LoadedCertificate {
        let fingerprint = FileFingerprint.of(source)
        let (chain, key) = try readChainAndKey(source)
        guard let leaf = chain.first else { throw CertificateError("no certificate in \(source.certificatePath)") }
        let parsed = try Certificate(derEncoded: try leaf.toDERBytes())
        try checkKeyMatches(key, certificate: parsed)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        // TLS 1.2 is the oldest version still considered safe (RFC 8996 deprecates 1.0/1.1).
        configuration.minimumTLSVersion = .tlsv12
        configuration.cipherSuites = cipherSuites
        configuration.sslContextCallback = library?.sniCallback
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw CertificateError("cannot build a TLS context from \(source.certificatePath): \(error)")
        }
        preferServerCiphers(context)
        return LoadedCertificate(
            source: source, info: info(of: parsed), context: context, chain: chain, key: key, fingerprint: fingerprint)
    }

    /// RFC 9325 §4.2: the server's order of TLS 1.2 suites wins (testssl.sh rates a
    /// missing order HIGH). swift-nio-ssl has no setting for it, so the context's
    /// SSL_CTX is reached by reflection; if a later swift-nio-ssl renames its field, this
    /// returns false and a unit test says so.
    @discardableResult
    static func preferServerCiphers(_ context: NIOSSLContext) -> Bool {
        for child in Mirror(reflecting: context).children where child.label == "sslContext" {
            guard let pointer = child.value as? OpaquePointer else { return false }
            cberth_tls_prefer_server_ciphers(UnsafeMutableRawPointer(pointer))
            return true
        }
        return false
    }

    static func info(of certificate: Certificate) -> CertificateInfo {
        var names: [String] = []
        if let san = try? certificate.extensions.subjectAlternativeNames {
            for name in san {
                if case .dnsName(let dns) = name { names.append(dns) }
            }
        }
        return CertificateInfo(
            subject: certificate.subject.description, dnsNames: names, notAfter: certificate.notValidAfter,
            selfSigned: certificate.subject == certificate.issuer)
    }

    private static func readFile(_ path: String, what: String) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else { throw CertificateError("\(what) \(path) does not exist") }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw CertificateError("\(what) \(path) is not readable") }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: maxFileSize + 1)) ?? Data()
        guard data.count <= maxFileSize else { throw CertificateError("\(what) \(path) is larger than 1 MiB") }
        guard !data.isEmpty else { throw CertificateError("\(what) \(path) is empty") }
        return Array(data)
    }

    private static func isPKCS12(_ path: String) -> Bool {
        let lower = path.lowercased()
        return lower.hasSuffix(".pfx") || lower.hasSuffix(".p12")
    }

    private static func readChainAndKey(_ source: CertificateSource) throws -> ([NIOSSLCertificate], NIOSSLPrivateKey) {
        let bytes = try readFile(source.certificatePath, what: "certificate file")
        if isPKCS12(source.certificatePath) {
            do {
                let bundle = try NIOSSLPKCS12Bundle(buffer: bytes, passphrase: Array((source.password ?? "").utf8))
                return (bundle.certificateChain, bundle.privateKey)
            } catch {
                throw CertificateError("cannot open PKCS#12 \(source.certificatePath): wrong password or not a PKCS#12 file")
            }
        }
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(bytes)
        } catch {
            throw CertificateError("\(source.certificatePath) holds no PEM certificate")
        }
        guard !chain.isEmpty else { throw CertificateError("\(source.certificatePath) holds no PEM certificate") }
        let keyPath = source.privateKeyPath ?? source.certificatePath
        let keyBytes = keyPath == source.certificatePath ? bytes : try readFile(keyPath, what: "private key file")
        guard String(decoding: keyBytes, as: UTF8.self).contains("PRIVATE KEY-----") else {
            throw CertificateError(
                source.privateKeyPath == nil
                    ? "\(source.certificatePath) holds no private key; set privateKeyPath"
                    : "\(keyPath) holds no PEM private key")
        }
        do {
            if let password = source.password {
                return (chain, try NIOSSLPrivateKey(bytes: keyBytes, format: .pem) { callback in callback(Array(password.utf8)) })
            }
            return (chain, try NIOSSLPrivateKey(bytes: keyBytes, format: .pem))
        } catch {
            throw CertificateError("cannot read the private key in \(keyPath) (encrypted without the right certificatePassword?)")
        }
    }

    /// Rule 4: the key must belong to the certificate. BoringSSL hands the key out in its
    /// traditional DER (PKCS#1 for RSA, SEC1 for EC, PKCS#8 otherwise).
    private static func checkKeyMatches(_ key: NIOSSLPrivateKey, certificate: Certificate) throws {
        let der = try key.derBytes
        var parsed: Certificate.PrivateKey?
        for type in ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"] where parsed == nil {
            parsed = try? Certificate.PrivateKey(pemDocument: PEMDocument(type: type, derBytes: der))
        }
        guard let parsed else { return }  // a key type swift-certificates cannot read; BoringSSL will still check at handshake
        guard parsed.publicKey == certificate.publicKey else {
            throw CertificateError("the private key does not match the certificate")
        }
    }

    public static let selfSignedValidityDays = 398

    /// Writes a self-signed certificate (ECDSA P-256, cert and key in one PEM file, mode 0600)
    /// for `hostname`, so every TLS port works on a fresh machine.
    public static func generateSelfSigned(hostname: String, at path: String) throws {
        let key = P256.Signing.PrivateKey()
        let privateKey = Certificate.PrivateKey(key)
        let name = try DistinguishedName {
            CommonName(hostname)
            OrganizationName("Berth self-signed")
        }
        let now = Date()
        var dnsNames: [GeneralName] = [.dnsName(hostname)]
        if hostname != "localhost" { dnsNames.append(.dnsName("localhost")) }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: privateKey.publicKey,
            notValidBefore: now.addingTimeInterval(-3600),
            // 398 days: the longest validity clients accept for a server certificate.
            notValidAfter: now.addingTimeInterval(Double(selfSignedValidityDays) * 86400),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                KeyUsage(digitalSignature: true)
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(dnsNames)
            },
            issuerPrivateKey: privateKey)
        let pem = try certificate.serializeAsPEM().pemString + "\n" + key.pemRepresentation + "\n"
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: path, contents: Data(pem.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CertificateError("cannot write \(path)")
        }
    }
}

/// The certificate library as TLS uses it: the name a client sends in SNI picks a library
/// certificate whose DNS names match it, exact before wildcard (RFC 6125 §6.4); no SNI, or
/// no match, keeps the port's own certificate. Shared by every listener's TLS context, so
/// a library change applies to the next handshake everywhere, with no context rebuilt.
public final class CertificateLibrary: Sendable {
    public struct Entry: Sendable {
        public var id: String
        public var certificate: LoadedCertificate
        var names: [String]
    }

    private let entries = NIOLockedValueBox<[Entry]>([])

    public init() {}

    public func replace(with certificates: [(id: String, certificate: LoadedCertificate)]) {
        let entries = certificates.map { item in
            Entry(id: item.id, certificate: item.certificate, names: item.certificate.info.dnsNames.map { $0.lowercased() })
        }
        self.entries.withLockedValue { $0 = entries }
    }

    /// RFC 6125 §6.4.3: `*.example.com` covers `mail.example.com`, not `example.com` nor
    /// `a.b.example.com`.
    public static func covers(_ pattern: String, _ name: String) -> Bool {
        let pattern = pattern.lowercased(), name = name.lowercased()
        if pattern == name { return true }
        guard pattern.hasPrefix("*."), let dot = name.firstIndex(of: ".") else { return false }
        let label = name[..<dot]
        return !label.isEmpty && !label.contains("*") && name[dot...] == pattern.dropFirst()
    }

    public func match(_ serverName: String) -> Entry? {
        let name = serverName.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "."))
        return entries.withLockedValue { entries in
            entries.first { $0.names.contains(name) } ?? entries.first { $0.names.contains { Self.covers($0, name) } }
        }
    }

    var sniCallback: NIOSSLContextCallback {
        { [weak self] values, promise in
            guard let name = values.serverHostname, let entry = self?.match(name) else {
                promise.succeed(.noChanges)
                return
            }
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = entry.certificate.chain.map { .certificate($0) }
            override.privateKey = .privateKey(entry.certificate.key)
            promise.succeed(override)
        }
    }
}
