import NIOCore
import NIOSSL

/// Input a protocol has buffered but not yet processed.
public protocol BufferedInput {
    /// Drops everything buffered; returns how many bytes.
    mutating func discardBuffered() -> Int
}

/// The STARTTLS / STLS / LDAP StartTLS upgrade, shared by every protocol.
public enum StartTLS {
    /// Drops what the client sent after the command, then adds a server TLS handler at the
    /// front of the pipeline. RFC 3207 §4.2 (and its IMAP, POP and LDAP twins): the client
    /// must not send anything after the command until the handshake is done; what it did
    /// send was not sent over TLS and is never executed (CVE-2011-0411). Call on the event
    /// loop in the same tick that writes the "go ahead" reply, so that the next bytes read
    /// are already handed to TLS. Returns how many bytes were discarded, for the log.
    public static func upgrade(
        _ channel: any Channel, context: NIOSSLContext, discarding input: inout some BufferedInput
    ) throws -> Int {
        channel.eventLoop.preconditionInEventLoop()
        let discarded = input.discardBuffered()
        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context), position: .first)
        return discarded
    }
}
