import BerthCore
import BerthLDAP
import BerthLDAPServer
import BerthStore
import Logging
import ServiceLifecycle

/// The LDAP address book follows the configuration: every change to domains or users
/// rebuilds the directory the LDAP sessions search (off the event loops).
final class LDAPDirectoryService: Service, Sendable {
    let source: LDAPDirectorySource
    private let changes: AsyncStream<Void>

    init(store: ConfigStore, changes: AsyncStream<Void>, logger: Logger) {
        self.changes = changes
        source = LDAPDirectorySource {
            do {
                let people = try store.allUsers().map { user in
                    LDAPDirectory.Person(
                        uid: user.name, domain: user.domain, displayName: user.displayName, givenName: user.givenName,
                        surname: user.surname, mail: [user.address] + user.aliasAddresses)
                }
                return LDAPDirectory(
                    domains: try store.domains().map(\.name), people: people, vendorVersion: BerthVersion.string,
                    saslMechanisms: LDAPServer.saslMechanisms)
            } catch {
                logger.error("LDAP directory: cannot read domains and users: \(error)")
                return LDAPDirectory(domains: [], people: [], vendorVersion: BerthVersion.string)
            }
        }
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            for await _ in self.changes { self.source.rebuild() }
        }
    }
}
