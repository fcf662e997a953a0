import CBerthTLS
import NIOSSL

/// What the mail log says of a session's TLS: the version (public in swift-nio-ssl) and
/// the cipher suite, which swift-nio-ssl does not expose; its SSL pointer is reached by
/// reflection, and a unit test fails if a later swift-nio-ssl moves it.
public enum TLSDetails {
    public static func cipher(of handler: NIOSSLHandler) -> String? {
        var mirror: Mirror? = Mirror(reflecting: handler)
        while let current = mirror {
            if let connection = current.descendant("connection") {
                guard let ssl = Mirror(reflecting: connection).descendant("ssl") as? OpaquePointer,
                      let name = cberth_tls_cipher_name(UnsafeRawPointer(ssl))
                else { return nil }
                return String(cString: name)
            }
            mirror = current.superclassMirror
        }
        return nil
    }
}
