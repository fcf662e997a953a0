import Logging
import NIOCore
import NIOSSL

/// TLS as every session handler meets it: the `connect` line, the implicit-TLS handshake
/// the greeting waits for (`ssl` ports), the `tls established` line when a handshake
/// completes (implicit, or after STARTTLS / STLS), and TLS failures in the mail log.
public struct SessionTLS: Sendable {
    /// Implicit TLS: the greeting waits in the TLS handler until the handshake completes.
    public private(set) var isHandshakePending = false

    public init() {}

    /// Which handshake completed.
    public enum Handshake: Sendable, Hashable {
        /// The one an `ssl` port starts with, before the greeting.
        case implicit
        /// After STARTTLS or STLS: the protocol starts over (RFC 3207 §4.2, RFC 2595 §4).
        case upgrade
    }

    /// The session begins: logs `connect`. Returns true when an implicit-TLS handshake
    /// comes first; the caller arms the handshake deadline.
    public mutating func start(implicitTLS: Bool, log: SessionLog) -> Bool {
        log.event("connect", ["tls": .string(implicitTLS ? "implicit" : "none")])
        isHandshakePending = implicitTLS
        return implicitTLS
    }

    /// STARTTLS (or STLS) was accepted and its reply flushed: `StartTLS.upgrade`, and a
    /// notice of the pipelined bytes it threw away, `command` naming the command.
    public static func upgrade(
        _ channel: any Channel, context: NIOSSLContext, discarding input: inout some BufferedInput, command: String,
        log: SessionLog
    ) throws {
        let discarded = try StartTLS.upgrade(channel, context: context, discarding: &input)
        if discarded > 0 {
            log.event("\(command) discarded pipelined input", ["bytes": .stringConvertible(discarded)], level: .notice)
        }
    }

    /// The TLS handler reported `handshakeCompleted`: the version goes on every later line
    /// of the session's log, the cipher into one `tls established` line.
    public mutating func handshakeCompleted(_ pipeline: ChannelPipeline, log: inout SessionLog) -> Handshake {
        let tls = try? pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
        log.set("tls", tls?.tlsVersion.map(TLSDetails.versionName) ?? "yes")
        log.event("tls established", tls.flatMap(TLSDetails.cipher).map { ["cipher": .string($0)] } ?? [:])
        defer { isHandshakePending = false }
        return isHandshakePending ? .implicit : .upgrade
    }

    /// Logs an error that ends the session if it is TLS's: a failed handshake or a broken
    /// record is a `tls failed` line; a client closing without close_notify, as most do
    /// after QUIT or LOGOUT, is none. Returns false for any other error (a reset).
    @discardableResult
    public static func logFailure(_ error: any Error, log: SessionLog) -> Bool {
        if case .uncleanShutdown? = error as? NIOSSLError { return true }
        guard error is NIOSSLError || error is BoringSSLError else { return false }
        log.event("tls failed", ["reason": "\(error)"], level: .notice)
        return true
    }
}
