import Foundation

/// Everything `berth serve` is told on its command line and environment.
public struct ServeOptions: Sendable {
    public var dataDirectory: String
    public var adminHost: String
    public var adminPort: Int
    /// Overrides (and is remembered as) the server's host name.
    public var hostname: String?
    /// First start seeds no ports (for automation and tests).
    public var noDefaultPorts: Bool
    /// BERTH_ADMIN_PASSWORD: the admin password at first start (or a reset later).
    public var adminPassword: String?
    /// Replace the stored admin password with BERTH_ADMIN_PASSWORD (or a generated one).
    public var resetAdminPassword: Bool = false
    public var allowPlaintextAuth: Bool
    public var maxMessageSize: Int
    /// A command must be complete within this many seconds of the previous reply.
    public var idleTimeoutSeconds: Int = 300
    /// A TLS handshake must be done within this many seconds.
    public var tlsHandshakeTimeoutSeconds: Int = 30
    /// How long sessions of a removed or changed listener may go on before `421 4.3.2`.
    public var drainTimeoutSeconds: Int = 120
    public var logLevel: String = "info"
    public var logFormat: LogFormat = .text
    /// Recursive resolver for outbound delivery ("ADDR:PORT"); nil: /etc/resolv.conf's.
    public var dnsServer: String?
    /// The port MX hosts are reached on (RFC 5321: 25).
    public var mxPort: Int = 25
    /// `DeliveryJournal.checkpointInterval`: how long an acknowledged message may be
    /// durable only in the journal.
    public var journalCheckpointSeconds: Double = 1
    /// Pin each event loop to a CPU and serve a connection on the loop of the CPU that
    /// received it (`CPUSteering`); off: the loops float and the kernel spreads connections.
    public var cpuAffinity: Bool = true
    /// Serve the admin API and web admin over HTTPS with this certificate (the loading
    /// rules of a port's certificate: PEM chain, key in it or `adminPrivateKey`, PKCS#12).
    public var adminCertificate: String?
    public var adminPrivateKey: String?
    public var adminCertificatePassword: String?

    public init(
        dataDirectory: String, adminHost: String = "127.0.0.1", adminPort: Int = 8080, hostname: String? = nil,
        noDefaultPorts: Bool = false, adminPassword: String? = nil, allowPlaintextAuth: Bool = false,
        maxMessageSize: Int = 25 * 1024 * 1024
    ) {
        self.dataDirectory = dataDirectory
        self.adminHost = adminHost
        self.adminPort = adminPort
        self.hostname = hostname
        self.noDefaultPorts = noDefaultPorts
        self.adminPassword = adminPassword
        self.allowPlaintextAuth = allowPlaintextAuth
        self.maxMessageSize = maxMessageSize
    }
}
