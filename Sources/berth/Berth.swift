import ArgumentParser

@main
struct Berth: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "berth",
        abstract: "A mail server whose network face is its bindings: ports × IP addresses, changed live.",
        subcommands: [
            Serve.self, PortsCommand.self, IPsCommand.self, DomainsCommand.self, UsersCommand.self,
            ListenersCommand.self, SettingsCommand.self,
        ])
}
