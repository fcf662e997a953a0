import Crypto
import Foundation
import HummingbirdBcrypt
import Hummingbird
import NIOConcurrencyHelpers

/// HTTP Basic as `admin` against the stored bcrypt hash. A password that passed once is
/// remembered by its SHA-256 so that every request does not pay for bcrypt.
struct AdminAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let passwordHash: String
    let verified: NIOLockedValueBox<Set<Data>>

    init(passwordHash: String) {
        self.passwordHash = passwordHash
        self.verified = NIOLockedValueBox([])
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("basic "),
              let decoded = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
              let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else { throw APIError.unauthorized }
        let user = text[..<colon]
        let password = String(text[text.index(after: colon)...])
        let digest = Data(SHA256.hash(data: Data(password.utf8)))
        guard user == "admin" else { throw APIError.unauthorized }
        if !verified.withLockedValue({ $0.contains(digest) }) {
            guard Bcrypt.verify(password, hash: passwordHash) else { throw APIError.unauthorized }
            verified.withLockedValue { _ = $0.insert(digest) }
        }
        return try await next(request, context)
    }
}
