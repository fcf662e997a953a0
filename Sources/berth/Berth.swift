import ArgumentParser
import BerthCore
import Foundation

@main
struct Berth: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "berth",
        abstract: "A mail server whose network face is its bindings: ports × IP addresses, changed live.",
        version: BerthVersion.string,
        subcommands: [
            Serve.self, PortsCommand.self, IPsCommand.self, DomainsCommand.self, UsersCommand.self,
            ListenersCommand.self, SettingsCommand.self, CertificatesCommand.self, QueueCommand.self, RoutesCommand.self,
            ReindexCommand.self,
        ])

    /// As ArgumentParser's own `main`, except that with `--json` a usage error is printed
    /// as JSON in the API's error shape too, so a script reading JSON never gets prose.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if !(error is ExitCode) && code != .success && CommandLine.arguments.dropFirst().contains("--json") {
                let body = ["error": ["code": "usage", "message": message(for: error)]]
                if let data = try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .withoutEscapingSlashes]) {
                    FileHandle.standardError.write(data + Data("\n".utf8))
                }
                Foundation.exit(code.rawValue)
            }
            exit(withError: error)
        }
    }
}
