import NIOCore
import NIOSSL

/// The STARTTLS / STLS / LDAP StartTLS upgrade, shared by every protocol.
/// RFC 3207 §4.2 (and its IMAP, POP and LDAP twins): the client must not send anything
/// after the command until the handshake is done; anything it did send is discarded by
/// the protocol handler *before* this is called, so it can never be read as if it had
/// been sent over TLS (the STARTTLS command-injection attack, CVE-2011-0411).
public enum StartTLS {
    /// Adds a server TLS handler at the front of the pipeline. Must be called on the
    /// event loop in the same tick that writes the "go ahead" reply, so that the next
    /// bytes read are already handed to TLS.
    public static func upgrade(_ channel: any Channel, context: NIOSSLContext) throws {
        channel.eventLoop.preconditionInEventLoop()
        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context), position: .first)
    }
}
