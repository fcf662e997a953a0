import CBerthTLS
import NIOSSL

/// What the mail log says of a session's TLS: the version (public in swift-nio-ssl) and
/// the cipher suite, which swift-nio-ssl does not expose; its SSL pointer is reached by
/// reflection, and a unit test fails if a later swift-nio-ssl moves it.
public enum TLSDetails {
    /// "TLSv1.3", as OpenSSL and Postfix write it in their logs.
    public static func versionName(_ version: TLSVersion) -> String {
        switch version {
        case .tlsv1: return "TLSv1"
        case .tlsv11: return "TLSv1.1"
        case .tlsv12: return "TLSv1.2"
        case .tlsv13: return "TLSv1.3"
        }
    }

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
