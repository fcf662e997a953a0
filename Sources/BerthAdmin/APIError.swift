import BerthCore
import Foundation
import HTTPTypes
import Hummingbird

/// The contract's error body: `{"error": {"code", "message", "field"}}`.
struct APIError: HTTPResponseError {
    var status: HTTPResponse.Status
    var code: String
    var message: String
    var field: String?
    /// Seconds for a `Retry-After` header (429, 503).
    var retryAfter: Int?

    init(_ status: HTTPResponse.Status, code: String, message: String, field: String? = nil, retryAfter: Int? = nil) {
        self.retryAfter = retryAfter
        self.status = status
        self.code = code
        self.message = message
        self.field = field
    }

    init(_ error: BindingsError) {
        let status: HTTPResponse.Status
        switch error.code {
        case .validationFailed, .badCertificate: status = .unprocessableContent
        case .portConflict, .nameTaken, .conflict: status = .conflict
        case .notFound: status = .notFound
        case .invalidJSON: status = .badRequest
        }
        self.init(status, code: error.code.rawValue, message: error.message, field: error.field)
    }

    static let unauthorized = APIError(.unauthorized, code: "unauthorized", message: "HTTP Basic authentication as 'admin' is required")

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try JSONResponse.make(
            ErrorBody(error: .init(code: code, message: message, field: field)), status: status)
        // A page's own fetch that gets 401 must not make the browser pop up its Basic login
        // dialog over the web admin's login form (Fetch Metadata tells the two apart).
        let mode = request.headers[HTTPField.Name("Sec-Fetch-Mode")!]
        if status == .unauthorized && (mode == nil || mode == "navigate") {
            response.headers[HTTPField.Name("WWW-Authenticate")!] = "Basic realm=\"berth\""
        }
        if let retryAfter {
            response.headers[.retryAfter] = String(retryAfter)
        }
        return response
    }
}

private struct ErrorBody: Encodable {
    struct Inner: Encodable {
        var code: String
        var message: String
        var field: String?
    }
    var error: Inner
}

/// JSON in and out, with one decoder policy: syntax errors are 400 `invalid_json`;
/// wrong types, missing or unknown fields, a key given twice and numbers that are not
/// whole are 422 `validation_failed` naming the field.
enum JSONResponse {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try encoder.encode(value)
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Largest request body the admin API reads.
    static let maxBodySize = 1 << 20

    static func decode<T: Decodable>(_ type: T.Type, from request: Request) async throws -> T {
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: maxBodySize)
        } catch {
            throw APIError(.contentTooLarge, code: "body_too_large", message: "request body is larger than \(maxBodySize) bytes")
        }
        let data = Data(body.readableBytesView)
        guard (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) != nil else {
            throw APIError(.badRequest, code: "invalid_json", message: "request body is not valid JSON")
        }
        // What JSONDecoder lets through or reports without a path: a key given twice (the
        // later silently wins), 25.0 read as 25, 25.5 as "not valid JSON".
        let strictProblem = StrictJSON.firstProblem(in: Array(data))
        let value: T
        do {
            value = try JSONDecoder().decode(T.self, from: data)
        } catch let DecodingError.dataCorrupted(context) where context.debugDescription == StrictDecoding.unknownField {
            let field = fieldName(context.codingPath)
            throw APIError(
                .unprocessableContent, code: "validation_failed",
                message: "unknown field '\(field)' (field names are case-sensitive)", field: field)
        } catch {
            if let strictProblem { throw strictError(strictProblem) }
            throw decodingError(error)
        }
        if let strictProblem { throw strictError(strictProblem) }
        return value
    }

    static func strictError(_ found: (path: String, problem: StrictJSON.Problem)) -> APIError {
        let message: String
        switch found.problem {
        case .duplicateKey: message = "field '\(found.path)' is given twice; give each field once"
        case .notWholeNumber: message = "field '\(found.path)' must be a whole number"
        }
        return APIError(.unprocessableContent, code: "validation_failed", message: message, field: found.path)
    }

    /// A decoding failure as the contract's 422, naming the field.
    static func decodingError(_ error: any Error) -> APIError {
        switch error {
        case DecodingError.typeMismatch(let type, let context):
            let field = fieldName(context.codingPath)
            return APIError(
                .unprocessableContent, code: "validation_failed",
                message: field.isEmpty ? "the body must be a JSON object" : "field '\(field)' must be \(typeName(type))",
                field: field.isEmpty ? nil : field)
        case DecodingError.valueNotFound(let type, let context):
            let field = fieldName(context.codingPath)
            return APIError(
                .unprocessableContent, code: "validation_failed", message: "field '\(field)' must be \(typeName(type)), not null",
                field: field)
        case DecodingError.keyNotFound(let key, let context):
            let field = fieldName(context.codingPath + [key])
            return APIError(.unprocessableContent, code: "validation_failed", message: "field '\(field)' is required", field: field)
        case DecodingError.dataCorrupted(let context):
            let field = fieldName(context.codingPath)
            let reason = context.debugDescription.contains("does not fit") ? "must be a whole number" : context.debugDescription
            return APIError(
                .unprocessableContent, code: "validation_failed", message: "field '\(field)': \(reason)",
                field: field.isEmpty ? nil : field)
        default:
            return APIError(.unprocessableContent, code: "validation_failed", message: "\(error)")
        }
    }

    /// `ports[0]`, `outbound.ipv4.mode`: the path as the admin wrote it.
    static func fieldName(_ path: [any CodingKey]) -> String {
        var name = ""
        for key in path {
            if let index = key.intValue {
                name += "[\(index)]"
            } else {
                name += (name.isEmpty ? "" : ".") + key.stringValue
            }
        }
        return name
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type: return "a whole number"
        case is Bool.Type: return "true or false"
        case is PortID.Type: return "a port id (a string or a whole number)"
        case is [PortID].Type: return "a list of port ids"
        case is [String].Type, is [Any].Type: return "a list"
        default: return "of type \(type)"
        }
    }
}

/// Every error leaves in the contract's shape, including the router's own 404s and any
/// HTTPError a handler throws.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            let code: String
            switch error.status {
            case .notFound: code = "not_found"
            case .methodNotAllowed: code = "method_not_allowed"
            case .contentTooLarge: code = "body_too_large"
            case .badRequest: code = "bad_request"
            default: code = "http_\(error.status.code)"
            }
            let message = error.body ?? "\(request.method) \(request.uri.path): \(error.status.reasonPhrase)"
            throw APIError(error.status, code: code, message: message)
        }
    }
}
