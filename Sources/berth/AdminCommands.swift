import ArgumentParser
import BerthCore
import Foundation

let portColumns = [
    "id", "name", "protocol", "encryption", "tlsRequired", "port", "maxConnections", "maxConnectionsPerClient",
    "proxyProtocol", "assignedTo", "warnings",
]

struct PortsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ports", abstract: "List, add, edit and delete ports.",
        subcommands: [List.self, Add.self, Edit.self, Delete.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await AdminClient(options: client).list("/api/v1/ports", columns: portColumns)
        }
    }

    /// Fields shared by add and edit; nil means "not given".
    struct PortFields: ParsableArguments {
        @Option(help: "Friendly name (unique).") var name: String?
        @Option(help: "smtp, submission, imap, pop or ldap.") var `protocol`: String?
        @Option(help: "none, ssl (implicit TLS) or tls (STARTTLS).") var encryption: String?
        @Option(help: "Port number.") var port: Int?
        @Option(help: "With tls: refuse everything but STARTTLS and friends until TLS is up (true/false).") var tlsRequired: Bool?
        @Option(help: "PEM or PKCS#12 certificate file (empty: the default certificate).") var certificate: String?
        @Option(help: "PEM private key, when the certificate file holds none.") var privateKey: String?
        @Option(help: "Password of a PKCS#12 file or encrypted key.") var certificatePassword: String?
        @Option(help: "Description.") var description: String?
        @Option(help: "Concurrent connections on each listener (1-1000000; default 10000).") var maxConnections: Int?
        @Option(help: "Concurrent connections from one client address (1-1000000, at most --max-connections; default 100).")
        var maxConnectionsPerClient: Int?
        @Flag(inversion: .prefixedNo, help: "Connections start with a PROXY protocol v1/v2 header from a trusted network.")
        var proxyProtocol: Bool?
        @Option(name: .customLong("ip"), help: "Assign to this IP address (repeatable); replaces the assignments.") var ips: [String] = []
        @Flag(help: "Remove the port from every IP address.") var noIp = false

        var body: [String: Any] {
            var body: [String: Any] = [:]
            body["name"] = name
            body["protocol"] = `protocol`
            body["encryption"] = encryption
            body["port"] = port
            body["tlsRequired"] = tlsRequired
            // Paths are the caller's: relative ones are resolved here, where they were typed.
            body["certificatePath"] = certificate.map(absolutePath)
            body["privateKeyPath"] = privateKey.map(absolutePath)
            body["certificatePassword"] = certificatePassword
            body["description"] = description
            body["maxConnections"] = maxConnections
            body["maxConnectionsPerClient"] = maxConnectionsPerClient
            body["proxyProtocol"] = proxyProtocol
            if !ips.isEmpty || noIp { body["assignedTo"] = ips }
            return body
        }
    }

    struct Add: AsyncParsableCommand {
        @OptionGroup var fields: PortFields
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await client.run {
                let api = AdminClient(options: client)
                try api.show(try await api.request("POST", "/api/v1/ports", body: fields.body), columns: portColumns)
            }
        }
    }

    struct Edit: AsyncParsableCommand {
        @Argument(help: "Port id.") var id: String
        @OptionGroup var fields: PortFields
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await client.run {
                let api = AdminClient(options: client)
                try api.show(try await api.request("PUT", "/api/v1/ports/\(id)", body: fields.body), columns: portColumns)
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        @Argument(help: "Port ids.") var ids: [String]
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await client.run {
                let api = AdminClient(options: client)
                let answer = try await api.request("POST", "/api/v1/ports/delete", body: ["ids": ids])
                try api.done("deleted \(ids.joined(separator: ", "))", json: answer as? [String: Any] ?? ["deleted": ids])
            }
        }
    }
}

let ipColumns = ["address", "family", "interface", "source", "present", "hostname", "ports", "description"]

struct IPsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ips", abstract: "List and edit the server's IP addresses.",
        subcommands: [List.self, Add.self, Edit.self, Delete.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await AdminClient(options: client).list("/api/v1/ip-addresses", columns: ipColumns)
        }
    }

    struct AddressFields: ParsableArguments {
        @Option(help: "Host name this IP greets with (empty: the server's).") var hostname: String?
        @Option(help: "Description.") var description: String?
        @Option(name: .customLong("port"), help: "Port id to listen on (repeatable); replaces the list.") var ports: [String] = []
        @Flag(help: "Remove every port from this address.") var noPorts = false

        var body: [String: Any] {
            var body: [String: Any] = [:]
            body["hostname"] = hostname
            body["description"] = description
            if !ports.isEmpty || noPorts { body["ports"] = ports }
            return body
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add an address by hand (e.g. one a failover brings up).")
        @Argument var address: String
        @OptionGroup var fields: AddressFields
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await client.run {
                let api = AdminClient(options: client)
                var body = fields.body
                body["address"] = address
                try api.show(try await api.request("POST", "/api/v1/ip-addresses", body: body), columns: ipColumns)
            }
        }
    }

    struct Edit: AsyncParsableCommand {
        @Argument var address: String
        @OptionGroup var fields: AddressFields
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await client.run {
                let api = AdminClient(options: client)
                try api.show(try await api.request("PUT", "/api/v1/ip-addresses/\(address)", body: fields.body), columns: ipColumns)
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        @Argument var address: String
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await client.run {
                let api = AdminClient(options: client)
                _ = try await api.request("DELETE", "/api/v1/ip-addresses/\(address)")
                try api.done("deleted \(address)", json: ["deleted": address])
            }
        }
    }
}

let domainColumns = ["name", "ipAddress"]

struct DomainsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "domains", abstract: "List, add, edit and delete mail domains.",
        subcommands: [List.self, Add.self, Edit.self, Delete.self, DKIMCommand.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await AdminClient(options: client).list("/api/v1/domains", columns: domainColumns)
        }
    }

    struct Add: AsyncParsableCommand {
        @Argument var name: String
        @Option(help: "The IP its MX points at.") var ipAddress: String?
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await client.run {
                let api = AdminClient(options: client)
                var body: [String: Any] = ["name": name]
                body["ipAddress"] = ipAddress
                try api.show(try await api.request("POST", "/api/v1/domains", body: body), columns: domainColumns)
            }
        }
    }

    struct Edit: AsyncParsableCommand {
        @Argument var name: String
        @Option(help: "The IP its MX points at (empty to clear).") var ipAddress: String?
        @Option(help: "Outbound IPv4 mode: system, address, domain, rotate, disabled.") var outboundIpv4: String?
        @Option(help: "Outbound IPv4 addresses (repeatable).") var outboundIpv4Address: [String] = []
        @Option(help: "Outbound IPv6 mode.") var outboundIpv6: String?
        @Option(help: "Outbound IPv6 addresses (repeatable).") var outboundIpv6Address: [String] = []
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await client.run {
                let api = AdminClient(options: client)
                var body: [String: Any] = [:]
                body["ipAddress"] = ipAddress
                if outboundIpv4 != nil || outboundIpv6 != nil {
                    // The API replaces `outbound` whole; keep the family not named here.
                    let current = try await api.request("GET", "/api/v1/domains/\(name)") as? [String: Any] ?? [:]
                    var outbound = current["outbound"] as? [String: Any] ?? [:]
                    if let mode = outboundIpv4 { outbound["ipv4"] = ["mode": mode, "addresses": outboundIpv4Address] }
                    if let mode = outboundIpv6 { outbound["ipv6"] = ["mode": mode, "addresses": outboundIpv6Address] }
                    body["outbound"] = outbound
                }
                try api.show(try await api.request("PUT", "/api/v1/domains/\(name)", body: body), columns: domainColumns)
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a domain (one with users only with --force).")
        @Argument var name: String
        @Flag(help: "Delete the domain even though it has users; they are deleted with it (their mail stays on disk).")
        var force = false
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await client.run {
                let api = AdminClient(options: client)
                do {
                    _ = try await api.request("DELETE", "/api/v1/domains/\(name)" + (force ? "?force=true" : ""))
                } catch var failure as AdminClient.Failure where failure.status == 409 && !force {
                    failure.description += "; `berth domains delete \(name) --force` deletes it with its users"
                    throw failure
                }
                try api.done("deleted \(name)", json: ["deleted": name])
            }
        }
    }
}

let userColumns = ["address", "displayName", "givenName", "surname", "aliases", "quotaBytes"]

/// What `users add` and `users edit` may set besides the password.
struct UserProfileOptions: ParsableArguments {
    @Option(help: "How mail clients show the person, e.g. \"Alice Liddell\".") var displayName: String?
    @Option(help: "Given name (LDAP givenName).") var givenName: String?
    @Option(help: "Surname (LDAP sn).") var surname: String?
    @Option(help: "Other local parts in the same domain for this mailbox, comma-separated (replaces the list; \"\" empties it).")
    var aliases: String?
    @Option(help: "Mail quota: octets, or with K, M, G (1024-based), e.g. 500M; \"none\" removes it.")
    var quota: String?

    /// The fields given, as the API names them.
    func body() throws -> [String: Any] {
        var body: [String: Any] = [:]
        body["displayName"] = displayName
        body["givenName"] = givenName
        body["surname"] = surname
        if let aliases {
            body["aliases"] = aliases.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        if let quota { body["quotaBytes"] = quota.lowercased() == "none" ? NSNull() : try parseQuota(quota) }
        return body
    }
}

/// `500M` → 524288000: octets, or a number with K, M or G (1024-based).
func parseQuota(_ text: String) throws -> Int {
    let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
    var digits = text.uppercased()
    var unit = 1
    if let last = digits.last, let multiplier = units[last] {
        unit = multiplier
        digits.removeLast()
    }
    guard let value = Int(digits), value > 0, value <= Int.max / unit else {
        throw AdminClient.Failure(description: "--quota must be a positive number of octets, optionally with K, M or G (e.g. 500M)")
    }
    return value * unit
}

struct UsersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users", abstract: "List, add, edit and delete users (`berth users`: every user of every domain).",
        subcommands: [List.self, Add.self, Edit.self, Delete.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the users of one domain, or of every domain.")
        @Argument(help: "Only this domain's users.") var domain: String?
        @OptionGroup var client: ClientOptions
        func run() async throws {
            let path = domain.map { "/api/v1/domains/\($0)/users" } ?? "/api/v1/users"
            try await AdminClient(options: client).list(path, columns: userColumns)
        }
    }

    struct Add: AsyncParsableCommand {
        @Argument var domain: String
        @Argument var name: String
        @Option(help: "Password (env BERTH_USER_PASSWORD keeps it out of the process list).")
        var password: String?
        @OptionGroup var profile: UserProfileOptions
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await client.run {
                guard let password = password ?? ProcessInfo.processInfo.environment["BERTH_USER_PASSWORD"] else {
                    throw AdminClient.Failure(description: "give --password or set BERTH_USER_PASSWORD")
                }
                let api = AdminClient(options: client)
                var body = try profile.body()
                body["name"] = name
                body["password"] = password
                try api.show(try await api.request("POST", "/api/v1/domains/\(domain)/users", body: body), columns: userColumns)
            }
        }
    }

    struct Edit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reset a user's password, change the names, aliases or quota.")
        @Argument var domain: String
        @Argument var name: String
        @Option(help: "New password (env BERTH_USER_PASSWORD keeps it out of the process list).")
        var password: String?
        @OptionGroup var profile: UserProfileOptions
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await client.run {
                var body = try profile.body()
                body["password"] = password ?? ProcessInfo.processInfo.environment["BERTH_USER_PASSWORD"]
                guard !body.isEmpty else {
                    throw AdminClient.Failure(
                        description: "give --password (or BERTH_USER_PASSWORD), --display-name, --given-name, --surname, --aliases and/or --quota")
                }
                let api = AdminClient(options: client)
                try api.show(
                    try await api.request("PUT", "/api/v1/domains/\(domain)/users/\(name)", body: body),
                    columns: userColumns)
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        @Argument var domain: String
        @Argument var name: String
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await client.run {
                let api = AdminClient(options: client)
                _ = try await api.request("DELETE", "/api/v1/domains/\(domain)/users/\(name)")
                try api.done("deleted \(name)@\(domain)", json: ["deleted": "\(name)@\(domain)"])
            }
        }
    }
}

struct ListenersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "listeners", abstract: "Show every (IP, port) listener and its state.")
    @OptionGroup var client: ClientOptions
    func run() async throws {
        try await AdminClient(options: client).list("/api/v1/listeners", columns: ["address", "port", "portName", "protocol", "encryption", "state", "activeConnections", "totalConnections", "error"])
    }
}

let settingsColumns = [
    "proxyTrustedNetworks", "authFailureDelayMs", "authBanThreshold", "authBanWindowSeconds", "authBanSeconds",
    "queueRetryInitialSeconds", "queueRetryMaxSeconds", "queueLifetimeSeconds", "queueDelayWarningSeconds",
    "outboundMaxConnections", "outboundMaxConnectionsPerDestination", "outboundConnectTimeoutSeconds",
    "outboundFailureMemorySeconds", "ldapAnonymousSearch", "ldapSearchAllDomains",
]

struct SettingsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "settings", abstract: "Show and change the server settings (PROXY trust, authentication throttle, outbound queue, LDAP access).",
        subcommands: [Show.self, Change.self], defaultSubcommand: Show.self)

    struct Show: AsyncParsableCommand {
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await AdminClient(options: client).list("/api/v1/settings", columns: settingsColumns)
        }
    }

    struct Change: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set", abstract: "Change the settings given; the others stay.")
        @Option(help: "Delay before answering a failed authentication, in ms (0-60000); grows per failure in a session.")
        var authFailureDelayMs: Int?
        @Option(help: "Failures from one client address within the window that ban it (1-10000).")
        var authBanThreshold: Int?
        @Option(help: "The window those failures are counted in, in seconds (1-604800).")
        var authBanWindowSeconds: Int?
        @Option(help: "How long a ban lasts, in seconds (1-604800).")
        var authBanSeconds: Int?
        @Option(help: "A network (CIDR) allowed to send PROXY protocol headers (repeatable; replaces the list).")
        var proxyTrustedNetwork: [String] = []
        @Flag(help: "Trust no network with PROXY protocol headers.")
        var clearProxyTrustedNetworks = false
        @Option(help: "First retry of a deferred recipient, in seconds (doubles each time).") var queueRetryInitialSeconds: Int?
        @Option(help: "Longest wait between retries, in seconds.") var queueRetryMaxSeconds: Int?
        @Option(help: "How long a message is retried before it bounces, in seconds (default 5 days).") var queueLifetimeSeconds: Int?
        @Option(help: "Send one delay warning after this many seconds (0: never).") var queueDelayWarningSeconds: Int?
        @Option(help: "Outbound SMTP connections at once.") var outboundMaxConnections: Int?
        @Option(help: "Outbound SMTP connections at once to one destination.") var outboundMaxConnectionsPerDestination: Int?
        @Option(help: "Seconds to wait for an outbound connection.") var outboundConnectTimeoutSeconds: Int?
        @Option(help: "Seconds a rotate source address that failed goes last.") var outboundFailureMemorySeconds: Int?
        @Option(help: "LDAP: may anonymous sessions search the address book? (true/false)") var ldapAnonymousSearch: Bool?
        @Option(help: "LDAP: does a session see every domain's people, not only its own domain's? (true/false)")
        var ldapSearchAllDomains: Bool?
        @OptionGroup var client: ClientOptions

        func validate() throws {
            if clearProxyTrustedNetworks && !proxyTrustedNetwork.isEmpty {
                throw ValidationError("--clear-proxy-trusted-networks and --proxy-trusted-network contradict each other")
            }
        }

        func run() async throws {
            try await client.run {
                var body: [String: Any] = [:]
                body["authFailureDelayMs"] = authFailureDelayMs
                body["authBanThreshold"] = authBanThreshold
                body["authBanWindowSeconds"] = authBanWindowSeconds
                body["authBanSeconds"] = authBanSeconds
                body["queueRetryInitialSeconds"] = queueRetryInitialSeconds
                body["queueRetryMaxSeconds"] = queueRetryMaxSeconds
                body["queueLifetimeSeconds"] = queueLifetimeSeconds
                body["queueDelayWarningSeconds"] = queueDelayWarningSeconds
                body["outboundMaxConnections"] = outboundMaxConnections
                body["outboundMaxConnectionsPerDestination"] = outboundMaxConnectionsPerDestination
                body["outboundConnectTimeoutSeconds"] = outboundConnectTimeoutSeconds
                body["outboundFailureMemorySeconds"] = outboundFailureMemorySeconds
                body["ldapAnonymousSearch"] = ldapAnonymousSearch
                body["ldapSearchAllDomains"] = ldapSearchAllDomains
                if clearProxyTrustedNetworks || !proxyTrustedNetwork.isEmpty { body["proxyTrustedNetworks"] = proxyTrustedNetwork }
                let api = AdminClient(options: client)
                try api.show(try await api.request("PUT", "/api/v1/settings", body: body), columns: settingsColumns)
            }
        }
    }
}

/// `path` made absolute against the working directory; empty (the default certificate)
/// stays empty.
func absolutePath(_ path: String) -> String {
    FilePath.absolute(path, against: FileManager.default.currentDirectoryPath)
}
