// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "berth",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "berth", targets: ["berth"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        // Pure model and rules: no I/O.
        .target(name: "BerthCore", swiftSettings: swiftSettings),
        // Linux calls Swift's Glibc module does not expose.
        .target(name: "CBerthSystem"),
        // BoringSSL switches swift-nio-ssl does not expose (server cipher preference).
        .target(name: "CBerthTLS", dependencies: [.product(name: "NIOSSL", package: "swift-nio-ssl")]),
        // SQLite (GRDB) config store, Maildir message store, change feed.
        .target(
            name: "BerthStore",
            dependencies: [
                "BerthCore", "CBerthSystem",
                // Modified UTF-7 folder names on disk, as IMAP and Dovecot spell them.
                "BerthIMAP",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Listener manager, TLS contexts, certificates, STARTTLS: protocol-agnostic.
        .target(
            name: "BerthNet",
            dependencies: [
                "BerthCore", "CBerthTLS", "CBerthSystem",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // SMTP types, framer, parser, session state machine, server handler.
        .target(
            name: "BerthSMTP",
            dependencies: [
                "BerthCore",
                "BerthNet",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // IMAP protocol core: framer (lines + literals), parser, response encoder. Pure, no I/O.
        .target(name: "BerthIMAP", dependencies: ["BerthCore"], swiftSettings: swiftSettings),
        // IMAP4rev1 server: session engine, NIO handler and the `ProtocolServer` over a `MailboxStore`.
        .target(
            name: "BerthIMAPServer",
            dependencies: [
                "BerthCore", "BerthNet", "BerthIMAP", "BerthMIME",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // POP3: parser, reply encoder, session state machine, UIDL ids (pure), and the
        // server handler that runs them on a channel over a MailboxStore.
        .target(
            name: "BerthPOP3",
            dependencies: [
                "BerthCore", "BerthNet",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // LDAPv3 (RFC 4511): framer, BER message decoder and response encoder on SwiftASN1. Pure, no I/O.
        .target(
            name: "BerthLDAP",
            dependencies: [.product(name: "SwiftASN1", package: "swift-asn1")],
            swiftSettings: swiftSettings
        ),
        // LDAP address book server: the NIO handler and the `ProtocolServer` over an `LDAPDirectory`.
        .target(
            name: "BerthLDAPServer",
            dependencies: [
                "BerthCore", "BerthNet", "BerthLDAP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // MIME message parser: headers, RFC 2047, ENVELOPE, BODYSTRUCTURE, FETCH sections. Pure, no I/O.
        .target(name: "BerthMIME", dependencies: ["BerthCore", "BerthIMAP"], swiftSettings: swiftSettings),
        // DNS stub resolver for outbound delivery: pure message codec, NIO UDP/TCP client.
        .target(
            name: "BerthDNS",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // DKIM signing of outgoing mail (RFC 6376, RFC 8463): keys, canonicalisation, signer.
        .target(
            name: "BerthDKIM",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // Outbound delivery: queue runner, SMTP client, MX resolution, DSNs.
        .target(
            name: "BerthDelivery",
            dependencies: [
                "BerthCore", "BerthStore", "BerthNet", "BerthDNS", "BerthDKIM",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Hummingbird admin API and the web admin's files.
        .target(
            name: "BerthAdmin",
            dependencies: [
                "BerthCore", "BerthStore", "BerthNet", "BerthDKIM",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            // The web admin: HTML, CSS and JavaScript modules, no build step.
            resources: [.copy("WebAdmin")],
            swiftSettings: swiftSettings
        ),
        // Wiring: builds the whole server from a data directory.
        .target(
            name: "BerthServer",
            dependencies: [
                "BerthCore", "BerthStore", "BerthNet", "BerthSMTP", "BerthIMAPServer", "BerthPOP3", "BerthLDAP", "BerthLDAPServer", "BerthAdmin", "BerthDelivery",
                "BerthDNS",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "berth",
            dependencies: [
                "BerthServer", "BerthCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // Helpers several test targets share (temporary directories, PEM files, tools).
        .target(
            name: "BerthTestSupport", dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            path: "Tests/BerthTestSupport"),
        .testTarget(name: "BerthCoreTests", dependencies: ["BerthCore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "BerthLDAPTests",
            dependencies: ["BerthLDAP", "BerthTestSupport", .product(name: "SwiftASN1", package: "swift-asn1")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthServerTests",
            dependencies: ["BerthServer", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthStoreTests",
            dependencies: [
                "BerthStore", "BerthCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthNetTests",
            dependencies: [
                "BerthTestSupport",
                "BerthNet", "BerthCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthAdminTests",
            dependencies: [
                "BerthTestSupport",
                "BerthAdmin", "BerthStore", "BerthNet", "BerthCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthSMTPTests",
            dependencies: [
                "BerthTestSupport",
                "BerthSMTP", "BerthNet", "BerthCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthIMAPTests",
            dependencies: ["BerthTestSupport", "BerthIMAP"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthIMAPServerTests",
            dependencies: [
                "BerthTestSupport", "BerthIMAPServer", "BerthIMAP", "BerthMIME", "BerthNet", "BerthCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthLDAPServerTests",
            dependencies: [
                "BerthLDAPServer", "BerthLDAP", "BerthNet", "BerthCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthPOP3Tests",
            dependencies: [
                "BerthTestSupport", "BerthPOP3", "BerthNet", "BerthCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthMIMETests",
            dependencies: ["BerthMIME", "BerthIMAP", "BerthCore", "BerthTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthDeliveryTests",
            dependencies: [
                "BerthDelivery", "BerthCore", "BerthStore", "BerthDNS", "BerthDKIM",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthDNSTests",
            dependencies: [
                "BerthTestSupport",
                "BerthDNS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BerthDKIMTests",
            dependencies: [
                "BerthTestSupport",
                "BerthDKIM",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
