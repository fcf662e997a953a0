import BerthCore
import Crypto
import Foundation
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

    public static func load(_ source: CertificateSource) throws -> LoadedCertificate {
        let fingerprint = FileFingerprint.of(source)
        let (chain, key) = try readChainAndKey(source)
        guard let leaf = chain.first else { throw CertificateError("no certificate in \(source.certificatePath)") }
        let parsed = try Certificate(derEncoded: try leaf.toDERBytes())
        try checkKeyMatches(key, certificate: parsed)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        // TLS 1.2 is the oldest version still considered safe (RFC 8996 deprecates 1.0/1.1).
        configuration.minimumTLSVersion = .tlsv12
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw CertificateError("cannot build a TLS context from \(source.certificatePath): \(error)")
        }
        return LoadedCertificate(source: source, info: info(of: parsed), context: context, fingerprint: fingerprint)
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
            notValidAfter: now.addingTimeInterval(825 * 86400),
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
