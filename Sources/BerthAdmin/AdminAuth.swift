import BerthNet
import Crypto
import Foundation
import HummingbirdBcrypt
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore

/// The admin API's request context: Hummingbird's basics plus the client's address, which
/// failed logins and bans are counted by.
public struct AdminRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }
}

/// HTTP Basic as `admin` against the stored bcrypt hash. A password that passed once is
/// remembered by its SHA-256 so that every request does not pay for bcrypt. Wrong
/// passwords go through the same auth guard as every mail protocol: checked on its small
/// pool, answered after a growing delay, and counted toward the client's ban (429).
struct AdminAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let passwordHash: String
    let authGuard: AuthGuard
    let verified: NIOLockedValueBox<Set<Data>>

    init(passwordHash: String, authGuard: AuthGuard) {
        self.passwordHash = passwordHash
        self.authGuard = authGuard
        self.verified = NIOLockedValueBox([])
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let client = (context as? any RemoteAddressRequestContext)?.remoteAddress?.ipAddress ?? "unknown"
        if let remaining = authGuard.banRemaining(client) {
            let seconds = Int((remaining.nanoseconds + 999_999_999) / 1_000_000_000)
            throw APIError(
                .tooManyRequests, code: "banned",
                message: "too many failed logins from \(client); try again in \(seconds) s", retryAfter: seconds)
        }
        guard let header = request.headers[.authorization], header.lowercased().hasPrefix("basic "),
              let decoded = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
              let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else { throw APIError.unauthorized }
        let user = String(text[..<colon])
        let password = String(text[text.index(after: colon)...])
        let digest = Data(SHA256.hash(data: Data(password.utf8)))
        if user == "admin" && verified.withLockedValue({ $0.contains(digest) }) {
            return try await next(request, context)
        }
        let passwordHash = self.passwordHash
        let verdict = await authGuard.check(
            user: user, client: client, service: "admin", failuresInSession: 0, log: context.logger
        ) {
            user == "admin" && Bcrypt.verify(password, hash: passwordHash)
        }
        switch verdict {
        case .accepted:
            verified.withLockedValue { _ = $0.insert(digest) }
            return try await next(request, context)
        case .rejected(let delay):
            try await Task.sleep(nanoseconds: UInt64(delay.nanoseconds))
            throw APIError.unauthorized
        case .banned:
            let seconds = Int(authGuard.policy.duration.nanoseconds / 1_000_000_000)
            throw APIError(
                .tooManyRequests, code: "banned", message: "too many failed logins from \(client); try again in \(seconds) s",
                retryAfter: seconds)
        case .busy:
            throw APIError(.serviceUnavailable, code: "busy", message: "too many logins being checked; try again", retryAfter: 1)
        }
    }
}

/// One log line per admin change (what, by whom, the result), so an admin can see who
/// moved a port. Reads are not logged; bodies never are (they may hold passwords).
struct AdminAuditMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method != .get && request.method != .head else { return try await next(request, context) }
        let client = (context as? any RemoteAddressRequestContext)?.remoteAddress?.ipAddress ?? "unknown"
        let what = "\(request.method) \(request.uri.path)"
        do {
            let response = try await next(request, context)
            context.logger.info("admin change", metadata: [
                "client": .string(client), "request": .string(what), "status": .stringConvertible(response.status.code),
            ])
            return response
        } catch let error as APIError {
            context.logger.notice("admin change refused", metadata: [
                "client": .string(client), "request": .string(what), "status": .stringConvertible(error.status.code),
                "code": .string(error.code), "reason": .string(error.message),
            ])
            throw error
        } catch {
            context.logger.notice("admin change refused", metadata: [
                "client": .string(client), "request": .string(what), "reason": .string("\(error)"),
            ])
            throw error
        }
    }
}
