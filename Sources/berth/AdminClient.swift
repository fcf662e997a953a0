import ArgumentParser
import Foundation
import AsyncHTTPClient

/// Options every admin command shares.
struct ClientOptions: ParsableArguments {
    @Option(help: "Admin API base URL (env BERTH_SERVER).")
    var server = ProcessInfo.processInfo.environment["BERTH_SERVER"] ?? "http://127.0.0.1:8080"

    @Flag(help: "Print the API's JSON instead of a table.")
    var json = false
}

/// A thin client of the admin API; the password comes from BERTH_ADMIN_PASSWORD.
struct AdminClient {
    let options: ClientOptions

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    func request(_ method: String, _ path: String, body: [String: Any]? = nil) async throws -> Any? {
        guard let password = ProcessInfo.processInfo.environment["BERTH_ADMIN_PASSWORD"], !password.isEmpty else {
            throw Failure(description: "set BERTH_ADMIN_PASSWORD to the admin password")
        }
        var base = options.server.trimmingCharacters(in: ["/"])
        if !base.contains("://") { base = "http://" + base }
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
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            data = Data(try await response.body.collect(upTo: 16 << 20).readableBytesView)
        } catch {
            throw Failure(description: "cannot reach the admin API at \(options.server): \(error)")
        }
        let status = Int(response.status.code)
        let object = data.isEmpty ? nil : try? JSONSerialization.jsonObject(with: data)
        guard (200..<300).contains(status) else {
            if let error = (object as? [String: Any])?["error"] as? [String: Any], let message = error["message"] as? String {
                throw Failure(description: "\(status) \(error["code"] as? String ?? ""): \(message)")
            }
            throw Failure(description: "HTTP \(status) from \(path)")
        }
        return object
    }

    /// GETs `path` and prints it; a failure becomes a message and exit code 1.
    func list(_ path: String, columns: [String]) async throws {
        try await runClient {
            try show(try await request("GET", path), columns: columns)
        }
    }

    /// Prints JSON (`--json`) or a table of `columns`.
    func show(_ object: Any?, columns: [String]) throws {
        if options.json {
            let data = try JSONSerialization.data(withJSONObject: object ?? NSNull(), options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed])
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

/// Runs an admin call and turns failures into a message and exit code 1.
func runClient(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let failure as AdminClient.Failure {
        FileHandle.standardError.write(Data("berth: \(failure.description)\n".utf8))
        throw ExitCode(1)
    }
}

