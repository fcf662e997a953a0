import ArgumentParser
import Foundation

let certificateColumns = ["id", "dnsNames", "notAfter", "selfSigned", "usedBy", "certificatePath", "warnings"]
let certificateDetailColumns = [
    "id", "certificatePath", "privateKeyPath", "subject", "issuer", "dnsNames", "notAfter", "selfSigned", "usedBy",
    "warnings",
]

struct CertificatesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certificates",
        abstract: "The certificate library: on every TLS port, SNI picks the one whose DNS names match.",
        subcommands: [List.self, Add.self, Show.self, Delete.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await AdminClient(options: client).list("/api/v1/certificates", columns: certificateColumns)
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a certificate file; it is checked (readable, parsable, key matching) before it is saved.")
        @Argument(help: "PEM file (chain, may also hold the key) or PKCS#12 (.pfx/.p12).") var path: String
        @Option(help: "PEM private key, when the certificate file holds none.") var key: String?
        @Option(
            name: .customLong("password-env"),
            help: "Name of an environment variable holding the password of a PKCS#12 file or an encrypted key (keeps it out of the process list).")
        var passwordEnv: String?
        @OptionGroup var client: ClientOptions

        func validate() throws {
            if let passwordEnv, ProcessInfo.processInfo.environment[passwordEnv] == nil {
                throw ValidationError("--password-env \(passwordEnv): that environment variable is not set")
            }
        }

        func run() async throws {
            try await client.run {
                // Paths are the caller's: relative ones are resolved here, where they were typed.
                var body: [String: Any] = ["certificatePath": absolutePath(path)]
                body["privateKeyPath"] = key.map(absolutePath)
                body["certificatePassword"] = passwordEnv.flatMap { ProcessInfo.processInfo.environment[$0] }
                let api = AdminClient(options: client)
                try api.show(try await api.request("POST", "/api/v1/certificates", body: body), columns: certificateDetailColumns)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        @Argument(help: "Certificate id.") var id: String
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await AdminClient(options: client).list("/api/v1/certificates/\(id)", columns: certificateDetailColumns)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a certificate (refused while a port names its file as the port's own certificate).")
        @Argument(help: "Certificate id.") var id: String
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await client.run {
                let api = AdminClient(options: client)
                _ = try await api.request("DELETE", "/api/v1/certificates/\(id)")
                try api.done("deleted certificate \(id)", json: ["deleted": id])
            }
        }
    }
}
