import BerthNet
import Crypto
import Foundation
import HummingbirdBcrypt
import Hummingbird
import HTTPTypes
import Logging
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

/// Who may call the API: HTTP Basic as `admin` (the CLI, scripts), or a web admin session
/// cookie with its CSRF token on every state-changing request. A password that passed
/// once is remembered by its SHA-256 so that every Basic request does not pay for bcrypt.
/// Wrong passwords go through the same auth guard as every mail protocol: checked on its
/// small pool, answered after a growing delay, and counted toward the client's ban (429).
struct AdminAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let login: AdminLogin

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let client = AdminLogin.client(context)
        try login.refuseBanned(client)
        try AdminLogin.refuseCrossSite(request)
        if let header = request.headers[.authorization] {
            guard header.lowercased().hasPrefix("basic "),
                  let decoded = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
                  let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
            else { throw APIError.unauthorized }
            try await login.verify(
                user: String(text[..<colon]), password: String(text[text.index(after: colon)...]), client: client,
                logger: context.logger)
            return try await next(request, context)
        }
        if let cookieValue = login.cookie.value(in: request) {
            let background = request.headers[AdminLogin.backgroundHeader] == "1"
            guard let session = login.sessions.session(cookieValue, touch: !background) else {
                throw APIError(.unauthorized, code: "session_expired", message: "the session has ended; log in again")
            }
            if !AdminLogin.isSafe(request.method) {
                guard let token = request.headers[AdminLogin.csrfHeader],
                      AdminSessions.constantTimeEquals(token, session.csrfToken)
                else {
                    throw APIError(
                        .forbidden, code: "csrf",
                        message: "a state-changing request needs the session's X-CSRF-Token header; reload the page")
                }
            }
            return try await next(request, context)
        }
        throw APIError.unauthorized
    }
}

/// The admin password check both kinds of caller share, and the login, session and logout
/// endpoints of the web admin (`/api/v1/session`).
struct AdminLogin: Sendable {
    static let csrfHeader = HTTPField.Name("X-CSRF-Token")!
    /// Set by the web admin on requests it makes by itself (polls): they do not keep the
    /// session alive.
    static let backgroundHeader = HTTPField.Name("X-Berth-Background")!

    let passwordHash: String
    let authGuard: AuthGuard
    let sessions: AdminSessions
    let cookie: SessionCookie
    let verified = NIOLockedValueBox<Set<Data>>([])

    static func client(_ context: some RequestContext) -> String {
        (context as? any RemoteAddressRequestContext)?.remoteAddress?.ipAddress ?? "unknown"
    }

    static func isSafe(_ method: HTTPRequest.Method) -> Bool { method == .get || method == .head }

    func refuseBanned(_ client: String) throws {
        if let remaining = authGuard.banRemaining(client) {
            let seconds = Int((remaining.nanoseconds + 999_999_999) / 1_000_000_000)
            throw APIError(
                .tooManyRequests, code: "banned",
                message: "too many failed logins from \(client); try again in \(seconds) s", retryAfter: seconds)
        }
    }

    /// A browser says where a request comes from (Fetch Metadata, `Origin`): a
    /// state-changing request another site made it send (a form posted to 127.0.0.1:8080
    /// with cached credentials) is refused whatever it authenticates with. Clients that
    /// are not browsers send neither header.
    static func refuseCrossSite(_ request: Request) throws {
        guard !isSafe(request.method) else { return }
        let refusal = APIError(.forbidden, code: "cross_origin", message: "state-changing requests from another site are refused")
        if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!], site != "same-origin" && site != "none" {
            throw refusal
        }
        if let origin = request.headers[.origin] {
            let host = origin.split(separator: "/", omittingEmptySubsequences: true).dropFirst().first.map(String.init)
            guard let host, let authority = HostCheckMiddleware<AdminRequestContext>.authority(of: request),
                  host.lowercased() == authority.lowercased()
            else { throw refusal }
        }
    }

    /// Checks `admin`'s password; throws the contract's 401, 429 or 503 when it fails.
    func verify(user: String, password: String, client: String, logger: Logger, field: String? = nil) async throws {
        let digest = Data(SHA256.hash(data: Data(password.utf8)))
        if user == "admin" && verified.withLockedValue({ $0.contains(digest) }) { return }
        let passwordHash = self.passwordHash
        let verdict = await authGuard.check(user: user, client: client, service: "admin", failuresInSession: 0, log: logger) {
            user == "admin" && Bcrypt.verify(password, hash: passwordHash)
        }
        switch verdict {
        case .accepted:
            verified.withLockedValue { _ = $0.insert(digest) }
        case .rejected(let delay):
            try await Task.sleep(nanoseconds: UInt64(delay.nanoseconds))
            if let field { throw APIError(.unauthorized, code: "unauthorized", message: "wrong password", field: field) }
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

    func addRoutes(to router: Router<AdminRequestContext>) {
        let group = router.group("api/v1/session")
        group.get { request, _ -> Response in
            guard let value = cookie.value(in: request),
                  let session = sessions.session(value, touch: request.headers[Self.backgroundHeader] != "1")
            else {
                throw APIError(.unauthorized, code: "unauthorized", message: "not logged in")
            }
            return try JSONResponse.make(sessions.grant(session))
        }
        group.post { request, context -> Response in
            let client = Self.client(context)
            try refuseBanned(client)
            try Self.refuseCrossSite(request)
            struct Body: Decodable {
                var password: String
                enum CodingKeys: CodingKey { case password }
                init(from decoder: any Decoder) throws {
                    try decoder.refuseUnknownKeys(CodingKeys.self)
                    password = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .password)
                }
            }
            let body = try await JSONResponse.decode(Body.self, from: request)
            try await verify(user: "admin", password: body.password, client: client, logger: context.logger, field: "password")
            let (cookieValue, grant) = sessions.create()
            context.logger.info("admin login", metadata: ["client": .string(client)])
            var response = try JSONResponse.make(grant)
            response.headers[.setCookie] = cookie.header(cookieValue, maxAge: Int(sessions.policy.lifetime))
            return response
        }
        group.delete { request, context -> Response in
            try Self.refuseCrossSite(request)
            if let value = cookie.value(in: request), let session = sessions.session(value) {
                guard let token = request.headers[Self.csrfHeader], AdminSessions.constantTimeEquals(token, session.csrfToken) else {
                    throw APIError(.forbidden, code: "csrf", message: "logging out needs the session's X-CSRF-Token header")
                }
                sessions.remove(value)
                context.logger.info("admin logout", metadata: ["client": .string(Self.client(context))])
            }
            var response = Response(status: .noContent)
            response.headers[.setCookie] = cookie.clear
            return response
        }
    }
}

/// One log line per admin change (what, by whom, the result), so an admin can see who
/// moved a port. Reads are not logged; bodies never are (they may hold passwords).
struct AdminAuditMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method != .get && request.method != .head else { return try await next(request, context) }
        let client = AdminLogin.client(context)
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
