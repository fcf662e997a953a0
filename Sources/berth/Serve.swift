import ArgumentParser
import BerthServer
import Foundation

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the server (SQLite + Maildir in the data directory, admin API on loopback).")

    @Option(help: "Data directory: berth.sqlite, mail/, queue/, certs/.")
    var data = "./berth-data"

    @Option(help: "Admin API address (HOST:PORT).")
    var admin = "127.0.0.1:8080"

    @Option(help: "Server host name for greetings (default: remembered, else the system's).")
    var hostname: String?

    @Flag(help: "On first start, create no ports (for automation and tests).")
    var noDefaultPorts = false

    @Flag(help: "Replace the stored admin password with BERTH_ADMIN_PASSWORD, or a new generated one.")
    var resetAdminPassword = false

    @Flag(help: "Offer SMTP AUTH on unencrypted connections too (off: AUTH only over TLS).")
    var allowPlaintextAuth = false

    @Option(help: "Largest message accepted, in bytes (SMTP SIZE).")
    var maxMessageSize = 25 * 1024 * 1024

    @Option(help: "Seconds a client has to complete each command (RFC 5321 4.5.3.2: at least 300).")
    var idleTimeout = 300

    @Option(help: "Seconds a client has to finish a TLS handshake (implicit TLS and STARTTLS).")
    var tlsHandshakeTimeout = 30

    @Option(help: "Seconds the open sessions of a removed port may go on before they get 421 4.3.2.")
    var drainTimeout = 120

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    @Option(help: "Log format: text (key=value) or json (one object per line).")
    var logFormat = "text"

    @Option(help: "DNS resolver for outbound delivery (ADDR:PORT or ADDR; default: /etc/resolv.conf's nameservers).")
    var dns: String?

    @Option(help: "TCP port outbound SMTP connects to on MX hosts (RFC 5321: 25; tests use another).")
    var mxPort = 25

    @Option(help: "Longest time, in seconds, an acknowledged small local message is durable only in the delivery journal before a syncfs checkpoint (0.05-3600).")
    var journalCheckpointSeconds = 1.0

    @Flag(help: "Let event loops run on any CPU, and connections go to any loop (default: one loop per CPU, each connection served on the CPU that received it).")
    var noCpuAffinity = false

    @Option(help: "Serve the admin API and web admin over HTTPS with this certificate (PEM chain, or PKCS#12).")
    var adminCertificate: String?

    @Option(help: "PEM private key of --admin-certificate, when the certificate file holds none.")
    var adminPrivateKey: String?

    func validate() throws {
        guard (1...65535).contains(mxPort) else { throw ValidationError("--mx-port must be 1-65535") }
        guard maxMessageSize > 0 else { throw ValidationError("--max-message-size must be a positive number of bytes") }
        guard idleTimeout > 0 else { throw ValidationError("--idle-timeout must be a positive number of seconds") }
        guard (0.05...3600).contains(journalCheckpointSeconds) else {
            throw ValidationError("--journal-checkpoint-seconds must be 0.05-3600")
        }
        guard drainTimeout >= 0 else { throw ValidationError("--drain-timeout must be 0 or more seconds") }
        guard tlsHandshakeTimeout > 0 else {
            throw ValidationError("--tls-handshake-timeout must be a positive number of seconds")
        }
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel) else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        if adminPrivateKey != nil && adminCertificate == nil {
            throw ValidationError("--admin-private-key needs --admin-certificate")
        }
        guard LogFormat(rawValue: logFormat) != nil else { throw ValidationError("--log-format must be text or json") }
    }

    func run() async throws {
        guard let colon = admin.lastIndex(of: ":"), let port = Int(admin[admin.index(after: colon)...]),
              (1...65535).contains(port)
        else {
            throw ValidationError("--admin must be HOST:PORT, e.g. 127.0.0.1:8080")
        }
        var host = String(admin[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        var options = ServeOptions(
            dataDirectory: data, adminHost: host, adminPort: port, hostname: hostname, noDefaultPorts: noDefaultPorts,
            adminPassword: ProcessInfo.processInfo.environment["BERTH_ADMIN_PASSWORD"],
            allowPlaintextAuth: allowPlaintextAuth, maxMessageSize: maxMessageSize)
        options.resetAdminPassword = resetAdminPassword
        options.idleTimeoutSeconds = idleTimeout
        options.tlsHandshakeTimeoutSeconds = tlsHandshakeTimeout
        options.drainTimeoutSeconds = drainTimeout
        options.adminCertificate = adminCertificate
        options.adminPrivateKey = adminPrivateKey
        // Like a port's certificatePassword: a secret, so not on the command line (ps).
        options.adminCertificatePassword = ProcessInfo.processInfo.environment["BERTH_ADMIN_CERTIFICATE_PASSWORD"]
        options.logLevel = logLevel
        options.logFormat = LogFormat(rawValue: logFormat) ?? .text
        options.dnsServer = dns
        options.mxPort = mxPort
        options.journalCheckpointSeconds = journalCheckpointSeconds
        options.cpuAffinity = !noCpuAffinity
        try await BerthApp.run(options)
    }
}
