/// A certificate in the library (BINDINGS.md, "Certificates (the library) and SNI"): on
/// every TLS port, a client whose SNI name matches one of its DNS names gets it.
public struct LibraryCertificate: Codable, Sendable, Hashable, Identifiable {
    /// Assigned by the server, stable, never reused (like a port's id).
    public var id: String
    /// Absolute, `.`/`..` resolved.
    public var certificatePath: String
    public var privateKeyPath: String?
    /// For PKCS#12 or an encrypted key. Write-only: never returned by the API.
    public var certificatePassword: String?

    public init(id: String, certificatePath: String, privateKeyPath: String? = nil, certificatePassword: String? = nil) {
        self.id = id
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.certificatePassword = certificatePassword
    }

    /// What the certificate loader reads; empty optional fields are absent.
    public var source: CertificateSource {
        CertificateSource(
            certificatePath: certificatePath,
            privateKeyPath: privateKeyPath.flatMap { $0.isEmpty ? nil : $0 },
            password: certificatePassword.flatMap { $0.isEmpty ? nil : $0 })
    }
}

/// The body of `POST /api/v1/certificates`: `certificatePath` required, `privateKeyPath`
/// and `certificatePassword` optional (`null` or `""` is the same as absent). Strict like
/// every other body: unknown fields are refused.
public struct LibraryCertificateBody: Decodable, Sendable, Hashable {
    public var certificatePath: String
    public var privateKeyPath: String?
    public var certificatePassword: String?

    enum CodingKeys: String, CodingKey { case certificatePath, privateKeyPath, certificatePassword }

    public init(certificatePath: String, privateKeyPath: String? = nil, certificatePassword: String? = nil) {
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.certificatePassword = certificatePassword
    }

    public init(from decoder: any Decoder) throws {
        try decoder.refuseUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        certificatePath = try container.decode(String.self, forKey: .certificatePath)
        privateKeyPath = try container.decodeIfPresent(String.self, forKey: .privateKeyPath).flatMap { $0.isEmpty ? nil : $0 }
        certificatePassword = try container.decodeIfPresent(String.self, forKey: .certificatePassword)
            .flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The body with relative paths made absolute against `directory` (the server's
    /// working directory, as for a port's paths), after checking that a path was given.
    public func resolvingPaths(against directory: String) throws -> LibraryCertificateBody {
        guard !certificatePath.trimmingWhitespace.isEmpty else {
            throw BindingsError.invalid("certificatePath", "certificatePath is required: the PEM or PKCS#12 file to add")
        }
        var body = self
        body.certificatePath = FilePath.absolute(certificatePath, against: directory)
        body.privateKeyPath = privateKeyPath.map { FilePath.absolute($0, against: directory) }
        return body
    }

    public var source: CertificateSource {
        CertificateSource(certificatePath: certificatePath, privateKeyPath: privateKeyPath, password: certificatePassword)
    }
}

extension Bindings {
    /// The ports whose own certificate is the file at `path` (both absolute and resolved,
    /// as stored): a library certificate cannot be deleted while one of them names it.
    public func ports(namingCertificate path: String) -> [Port] {
        ports.filter { $0.certificateSource?.certificatePath == path }
    }
}
