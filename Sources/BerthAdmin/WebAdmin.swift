import BerthCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// The web admin's files (HTML, CSS, JavaScript modules: `WebAdmin/`, a resource of this
/// module) and the headers that keep the admin's responses from being framed, sniffed or
/// made to run script from anywhere but these files.
public enum WebAdmin {
    /// The resource folder's name inside the bundle SwiftPM puts beside the executable.
    static let bundleName = "berth_BerthAdmin.resources"

    /// Where the files are: `BERTH_ADMIN_WEB_ROOT` when set (to edit the pages without a
    /// rebuild), else the resource bundle beside the executable. `nil`: not found; the API
    /// still works, the pages answer 404 saying where they were looked for.
    public static func locateRoot(environment: [String: String] = ProcessInfo.processInfo.environment) -> (root: String?, searched: [String]) {
        if let override = environment["BERTH_ADMIN_WEB_ROOT"], !override.isEmpty {
            return (isIndexIn(override) ? override : nil, [override])
        }
        var searched: [String] = []
        let executable = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath()
        var directories = [executable.deletingLastPathComponent()]
        if let main = Bundle.main.executableURL?.resolvingSymlinksInPath().deletingLastPathComponent() { directories.append(main) }
        for directory in directories {
            let candidate = directory.appendingPathComponent(bundleName).appendingPathComponent("WebAdmin").path
            if searched.contains(candidate) { continue }
            searched.append(candidate)
            if isIndexIn(candidate) { return (candidate, searched) }
        }
        return (nil, searched)
    }

    private static func isIndexIn(_ folder: String) -> Bool {
        FileManager.default.isReadableFile(atPath: folder + "/index.html")
    }

    /// Script, styles, images and API calls from this origin only; no inline script or
    /// style, no plugins, no framing, no form posts elsewhere.
    static let contentSecurityPolicy: ContentSecurityPolicy = [
        .defaultSrc(.self), .scriptSrc(.self), .styleSrc(.self), .imgSrc(.self, .scheme(.init(rawValue: "data:"))), .connectSrc(.self),
        .objectSrc(.none), .baseURI(.none), .formAction(.self), .frameAncestors(.none),
    ]
}

/// Headers every admin response carries, the error responses included. API answers are
/// never cached: they hold the server's configuration.
struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    static var policy: String { WebAdmin.contentSecurityPolicy.description }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        response.headers[.contentSecurityPolicy] = Self.policy
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        response.headers[HTTPField.Name("Cross-Origin-Opener-Policy")!] = "same-origin"
        response.headers[HTTPField.Name("Cross-Origin-Resource-Policy")!] = "same-origin"
        if request.uri.path.hasPrefix("/api/") {
            response.headers[.cacheControl] = "no-store"
        }
        return response
    }
}

/// Answers page requests when the web admin's files were not found, saying where they
/// were looked for (the API keeps working).
struct MissingWebAdminMiddleware<Context: RequestContext>: RouterMiddleware {
    let searched: [String]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound && !request.uri.path.hasPrefix("/api/") {
            throw APIError(
                .notFound, code: "no_web_admin",
                message: "the web admin's files were not found (looked in \(searched.joined(separator: ", "))); the API under /api/v1 works")
        }
    }
}

/// DNS rebinding: a page on evil.example whose name an attacker points at 127.0.0.1 is
/// same-origin with itself, so Origin checks pass; only the Host header tells. The admin
/// answers to IP addresses, `localhost` and the names `isKnownName` accepts (the server's
/// host name, an IP address's host name, a domain, the admin certificate's names).
struct HostCheckMiddleware<Context: RequestContext>: RouterMiddleware {
    let isKnownName: @Sendable (String) -> Bool

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.uri.path != "/healthz", let authority = Self.authority(of: request) else {
            return try await next(request, context)
        }
        let host = Self.hostPart(of: authority)
        if IPLiteral.canonical(host) != nil || host == "localhost" || isKnownName(host) {
            return try await next(request, context)
        }
        throw APIError(
            .misdirectedRequest, code: "unknown_host",
            message: "this admin listener does not answer for the host name '\(host)' (protection against DNS rebinding); "
                + "use its IP address, localhost, the server's host name or an IP address's host name")
    }

    /// The host the client asked for: HTTP/1's Host header (carried as `authority` once
    /// converted to HTTP types).
    static func authority(of request: Request) -> String? {
        request.headers[HTTPField.Name("Host")!] ?? request.head.authority
    }

    /// `[::1]:8080` → `::1`, `Mail.Example.com:8080` → `mail.example.com`.
    static func hostPart(of authority: String) -> String {
        var host = Substring(authority)
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            host = host[host.index(after: host.startIndex)..<close]
        } else if let colon = host.lastIndex(of: ":"), host.firstIndex(of: ":") == colon {
            host = host[..<colon]
        }
        var name = host.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        return name
    }
}
