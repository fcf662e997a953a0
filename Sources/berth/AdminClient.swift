import ArgumentParser
import Foundation
import AsyncHTTPClient
import NIOSSL

/// Options every admin command shares.
struct ClientOptions: ParsableArguments {
    @Option(help: "Admin API base URL (env BERTH_SERVER).")
    var server = ProcessInfo.processInfo.environment["BERTH_SERVER"] ?? "http://127.0.0.1:8080"

    @Option(help: "PEM file of the certificate (or its CA) an https:// admin API presents (env BERTH_SERVER_CA).")
    var serverCA = ProcessInfo.processInfo.environment["BERTH_SERVER_CA"]

    @Flag(help: "Print the API's JSON instead of a table (errors too, on stderr).")
    var json = false

    /// Runs an admin call; a failure becomes a message (JSON with `--json`) on stderr and
    /// exit code 1.
    func run(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let failure as AdminClient.Failure {
            if json {
                var error: [String: Any] = ["code": failure.code, "message": failure.message ?? failure.description]
                error["field"] = failure.field
                error["status"] = failure.status
                let data = (try? JSONSerialization.data(withJSONObject: ["error": error], options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
                FileHandle.standardError.write(data + Data("\n".utf8))
            } else {
                FileHandle.standardError.write(Data("berth: \(failure.description)\n".utf8))
            }
            throw ExitCode(1)
        }
    }
}

/// A thin client of the admin API; the password comes from BERTH_ADMIN_PASSWORD.
struct AdminClient {
    let options: ClientOptions

    /// A failed call, in plain words; with `--json` printed in the API's error shape.
    struct Failure: Error, CustomStringConvertible {
        var description: String
        var code: String = "error"
        var field: String?
        var status: Int?
        /// The API's own message, for `--json` (the description adds status and code).
        var message: String?
    }

    var baseURL: String {
        var base = options.server.trimmingCharacters(in: ["/"])
        if !base.contains("://") { base = "http://" + base }
        return base
    }

    func request(_ method: String, _ path: String, body: [String: Any]? = nil) async throws -> Any? {
        guard let password = ProcessInfo.processInfo.environment["BERTH_ADMIN_PASSWORD"], !password.isEmpty else {
            throw Failure(description: "set BERTH_ADMIN_PASSWORD to the admin password", code: "no_password")
        }
        let base = baseURL
        var request = HTTPClientRequest(url: base + path)
        request.method = .RAW(value: method)
        request.headers.add(name: "Authorization", value: "Basic " + Data("admin:\(password)".utf8).base64EncodedString())
        if let body {
            request.body = .bytes(try JSONSerialization.data(withJSONObject: body))
            request.headers.add(name: "Content-Type", value: "application/json")
        }
        let response: HTTPClientResponse
        let data: Data
        do {
            if let serverCA = options.serverCA, !serverCA.isEmpty {
                // An admin listener with its own (often self-signed) certificate: trust
                // exactly that file, not every CA the system knows.
                var tls = TLSConfiguration.makeClientConfiguration()
                tls.trustRoots = .file(serverCA)
                let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
                do {
                    response = try await client.execute(request, timeout: .seconds(30))
                    data = Data(try await response.body.collect(upTo: 16 << 20).readableBytesView)
                } catch {
                    try? await client.shutdown()
                    throw error
                }
                try await client.shutdown()
            } else {
                response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
                data = Data(try await response.body.collect(upTo: 16 << 20).readableBytesView)
            }
        } catch {
            throw Failure(
                description: "cannot reach the server at \(base) (\(Self.plainReason(error))); is `berth serve` running there? (--server or BERTH_SERVER)",
                code: "unreachable")
        }
        let status = Int(response.status.code)
        let object = data.isEmpty ? nil : try? JSONSerialization.jsonObject(with: data)
        guard (200..<300).contains(status) else {
            if status == 401 {
                throw Failure(
                    description: "wrong password: the server at \(base) answered 401 Unauthorized to BERTH_ADMIN_PASSWORD",
                    code: "unauthorized", status: status)
            }
            if let error = (object as? [String: Any])?["error"] as? [String: Any], let message = error["message"] as? String {
                let code = error["code"] as? String ?? "http_\(status)"
                throw Failure(
                    description: "\(status) \(code): \(message)", code: code, field: error["field"] as? String,
                    status: status, message: message)
            }
            throw Failure(description: "HTTP \(status) from \(base)\(path)", code: "http_\(status)", status: status)
        }
        return object
    }

    /// The reason a connection failed, without the client library's type names.
    static func plainReason(_ error: any Error) -> String {
        let text = "\(error)".lowercased()
        if text.contains("certificate_verify_failed") {
            return "its TLS certificate is not trusted; give --server-ca FILE (env BERTH_SERVER_CA) with the admin certificate"
        }
        if text.contains("failedtovalidatehostname") { return "its TLS certificate does not name the host in --server" }
        if text.contains("refused") { return "connection refused" }
        if text.contains("timeout") || text.contains("timed out") { return "timed out" }
        if text.contains("invalidurl") || text.contains("invalid url") { return "not a valid URL" }
        if text.contains("resolve") || text.contains("lookup") || text.contains("name or service") { return "host name not found" }
        if text.contains("unreachable") { return "network unreachable" }
        if text.contains("reset") { return "connection reset" }
        return "\(error)"
    }

    /// GETs `path` and prints it; a failure becomes a message and exit code 1.
    func list(_ path: String, columns: [String]) async throws {
        try await options.run {
            try show(try await request("GET", path), columns: columns)
        }
    }

    /// Prints what a call without a JSON answer did: `{"deleted": …}` with `--json`, else
    /// the sentence.
    func done(_ sentence: String, json: [String: Any]) throws {
        if options.json {
            try show(json, columns: [])
        } else {
            print(sentence)
        }
    }

    /// Prints JSON (`--json`) or a table of `columns`.
    func show(_ object: Any?, columns: [String]) throws {
        if options.json {
            let data = try JSONSerialization.data(withJSONObject: object ?? NSNull(), options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        guard let object else { return }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.fragmentsAllowed])
        let value = try JSONDecoder().decode(JSONValue.self, from: data)
        let rows: [[String: JSONValue]]
        switch value {
        case .array(let list): rows = list.compactMap { if case .object(let o) = $0 { return o } else { return nil } }
        case .object(let one): rows = [one]
        default: return
        }
        print(Table.render(rows, columns: columns))
    }
}

/// JSON as the table printer reads it (booleans kept apart from numbers).
enum JSONValue: Decodable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let b = try? container.decode(Bool.self) { self = .bool(b) }
        else if let n = try? container.decode(Double.self) { self = .number(n) }
        else if let s = try? container.decode(String.self) { self = .string(s) }
        else if let a = try? container.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }
}

enum Table {
    static func cell(_ value: JSONValue?) -> String {
        switch value {
        case nil, .null?: return "-"
        case .bool(let b)?: return b ? "yes" : "no"
        case .number(let n)?: return n == n.rounded() ? String(Int(n)) : String(n)
        case .string(let s)?: return s.isEmpty ? "-" : s
        case .array(let list)?: return list.isEmpty ? "-" : list.map { cell($0) }.joined(separator: ",")
        case .object(let o)?: return cell(o["subject"] ?? .string("{…}"))
        }
    }

    static func render(_ rows: [[String: JSONValue]], columns: [String]) -> String {
        let cells = rows.map { row in columns.map { cell(row[$0]) } }
        let widths = columns.indices.map { i in max(columns[i].count, cells.map { $0[i].count }.max() ?? 0) }
        func line(_ values: [String]) -> String {
            values.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        return ([line(columns.map { $0.uppercased() })] + cells.map(line)).joined(separator: "\n")
    }
}


