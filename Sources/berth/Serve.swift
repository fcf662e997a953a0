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
        try await BerthApp.run(options)
    }
}
