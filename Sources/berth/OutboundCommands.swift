import ArgumentParser
import Foundation

/// Queue listing: one row per message; recipients as "address (state, attempts)".
struct QueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue", abstract: "List, show, retry and delete messages waiting for outbound delivery.",
        subcommands: [List.self, Show.self, Retry.self, Delete.self], defaultSubcommand: List.self)

    static let columns = ["id", "sender", "size", "receivedAt", "pending", "attempts", "nextAttemptAt", "lastError"]

    /// The API's message flattened for the table (the JSON stays whole with --json).
    static func rows(_ object: Any?) -> Any? {
        func flat(_ message: [String: Any]) -> [String: Any] {
            let recipients = message["recipients"] as? [[String: Any]] ?? []
            let pending = recipients.filter { $0["state"] as? String == "pending" }
            var row = message
            row["pending"] = pending.compactMap { $0["address"] as? String }
            row["attempts"] = pending.compactMap { $0["attempts"] as? Int }.max() ?? 0
            row["nextAttemptAt"] = pending.compactMap { $0["nextAttemptAt"] as? String }.min() ?? NSNull()
            row["lastError"] = pending.compactMap { $0["lastError"] as? String }.first ?? NSNull()
            return row
        }
        if let list = object as? [[String: Any]] { return list.map(flat) }
        if let one = object as? [String: Any] { return flat(one) }
        return object
    }

    struct List: AsyncParsableCommand {
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await client.run {
                let api = AdminClient(options: client)
                let answer = try await api.request("GET", "/api/v1/queue")
                try api.show(client.json ? answer : QueueCommand.rows(answer), columns: QueueCommand.columns)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One message and every recipient's state.")
        @Argument(help: "Queue id (as in the 250 reply and the mail log).") var id: String
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await client.run {
                let api = AdminClient(options: client)
                let answer = try await api.request("GET", "/api/v1/queue/\(id)")
                if client.json {
                    try api.show(answer, columns: [])
                } else {
                    try api.show(QueueCommand.rows(answer), columns: QueueCommand.columns)
                    print("")
                    let recipients = (answer as? [String: Any])?["recipients"]
                    try api.show(recipients, columns: ["address", "state", "attempts", "nextAttemptAt", "lastError"])
                }
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Try a message (or, with --all, every message) now.")
        @Argument(help: "Queue id.") var id: String?
        @Flag(help: "Every waiting message.") var all = false
        @OptionGroup var client: ClientOptions

        func validate() throws {
            guard (id == nil) != (!all) else { throw ValidationError("give a queue id or --all") }
        }

        func run() async throws {
            try await client.run {
                let api = AdminClient(options: client)
                if let id {
                    try api.show(QueueCommand.rows(try await api.request("POST", "/api/v1/queue/\(id)/retry")), columns: QueueCommand.columns)
                } else {
                    let answer = try await api.request("POST", "/api/v1/queue/retry") as? [String: Any] ?? [:]
                    try api.done("retrying \(answer["recipients"] as? Int ?? 0) recipient(s) now", json: answer)
                }
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Drop a message from the queue without a bounce.")
        @Argument(help: "Queue id.") var id: String
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await client.run {
                let api = AdminClient(options: client)
                _ = try await api.request("DELETE", "/api/v1/queue/\(id)")
                try api.done("deleted \(id)", json: ["deleted": id])
            }
        }
    }
}

struct RoutesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routes", abstract: "Static routes: mail for a domain goes to a given host instead of its MX.",
        subcommands: [List.self, Set.self, Delete.self], defaultSubcommand: List.self)

    static let columns = ["domain", "host", "port", "requireTLS", "verifyCertificate"]

    struct List: AsyncParsableCommand {
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await AdminClient(options: client).list("/api/v1/routes", columns: RoutesCommand.columns)
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add or replace the route of a domain.")
        @Argument(help: "Recipient domain.") var domain: String
        @Argument(help: "HOST, HOST:PORT, [IPv6]:PORT (default port 25).") var destination: String
        @Flag(help: "Defer rather than send without TLS.") var requireTls = false
        @Flag(help: "Check the server's certificate and name (implies --require-tls).") var verifyCertificate = false
        @OptionGroup var client: ClientOptions

        func run() async throws {
            var host = destination
            var port = 25
            if destination.hasPrefix("["), let close = destination.firstIndex(of: "]") {
                host = String(destination[destination.index(after: destination.startIndex)..<close])
                let rest = destination[destination.index(after: close)...]
                if rest.hasPrefix(":") {
                    guard let value = Int(rest.dropFirst()) else { throw ValidationError("bad port in '\(destination)'") }
                    port = value
                }
            } else if destination.filter({ $0 == ":" }).count == 1, let colon = destination.firstIndex(of: ":") {
                host = String(destination[..<colon])
                guard let value = Int(destination[destination.index(after: colon)...]) else {
                    throw ValidationError("bad port in '\(destination)'")
                }
                port = value
            }
            let body: [String: Any] = ["host": host, "port": port, "requireTLS": requireTls, "verifyCertificate": verifyCertificate]
            try await client.run {
                let api = AdminClient(options: client)
                try api.show(try await api.request("PUT", "/api/v1/routes/\(domain)", body: body), columns: RoutesCommand.columns)
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        @Argument(help: "Recipient domain.") var domain: String
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await client.run {
                let api = AdminClient(options: client)
                _ = try await api.request("DELETE", "/api/v1/routes/\(domain)")
                try api.done("deleted the route of \(domain)", json: ["deleted": domain])
            }
        }
    }
}

/// `berth domains dkim NAME [--rotate]`: the TXT records to publish, as zone-file lines.
struct DKIMCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dkim", abstract: "Show a domain's DKIM records to publish in DNS (or rotate its keys).")
    @Argument(help: "Domain name.") var name: String
    @Flag(help: "Make new keys under new selectors; the old ones stop signing at once.") var rotate = false
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await client.run {
            let api = AdminClient(options: client)
            let answer = try await api.request(rotate ? "POST" : "GET", "/api/v1/domains/\(name)/dkim" + (rotate ? "/rotate" : ""))
            if client.json {
                try api.show(answer, columns: [])
                return
            }
            for key in (answer as? [String: Any])?["keys"] as? [[String: Any]] ?? [] {
                let record = key["record"] as? String ?? ""
                print("\(key["name"] as? String ?? "").\tIN\tTXT\t\(Self.zoneStrings(record))")
            }
        }
    }

    /// A TXT value as zone-file strings of at most 255 octets each (RFC 1035 §3.3.14).
    static func zoneStrings(_ record: String) -> String {
        var parts: [String] = []
        var rest = Substring(record)
        while !rest.isEmpty {
            parts.append("\"\(rest.prefix(255))\"")
            rest = rest.dropFirst(255)
        }
        return parts.joined(separator: " ")
    }
}
