/// A refused change: a machine-readable code, a message that names the objects and the
/// fix, and the offending field. Never carries a password.
public struct BindingsError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Codable {
        case validationFailed = "validation_failed"
        case portConflict = "port_conflict"
        case nameTaken = "name_taken"
        case badCertificate = "bad_certificate"
        case notFound = "not_found"
        case invalidJSON = "invalid_json"
        case conflict = "conflict"
    }

    public var code: Code
    public var message: String
    public var field: String?

    public init(_ code: Code, _ message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    public var description: String { message }

    public static func invalid(_ field: String, _ message: String) -> BindingsError {
        BindingsError(.validationFailed, message, field: field)
    }

    public static func notFound(_ message: String) -> BindingsError {
        BindingsError(.notFound, message)
    }
}
