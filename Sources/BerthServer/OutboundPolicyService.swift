import BerthAdmin
import BerthCore
import BerthDelivery
import BerthStore
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Keeps outbound delivery's view of the configuration (domains, IP hostnames, routes,
/// DKIM keys) in step with every committed change, as one snapshot read without a query.
final class OutboundPolicyService: Service, Sendable {
    private let store: ConfigStore
    private let hostname: String
    private let changes: AsyncStream<Void>
    private let logger: Logger
    private let box: NIOLockedValueBox<OutboundPolicy>

    init(store: ConfigStore, hostname: String, changes: AsyncStream<Void>, logger: Logger) {
        self.store = store
        self.hostname = hostname
        self.changes = changes
        self.logger = logger
        box = NIOLockedValueBox(OutboundPolicy(serverHostname: hostname, domains: [], ipAddresses: [], routes: [], dkimKeys: [:]))
    }

    var current: OutboundPolicy { box.withLockedValue { $0 } }

    /// Domains created before DKIM existed get their keys now.
    func ensureKeys() {
        for domain in (try? store.domains()) ?? [] {
            do {
                _ = try DomainKeys.ensure(domain.name, in: store)
            } catch {
                logger.error("dkim: cannot make keys for \(domain.name): \(error)")
            }
        }
    }

    func refresh() throws {
        let domains = try store.domains()
        let policy = OutboundPolicy(
            serverHostname: hostname, domains: domains, ipAddresses: try store.bindings().ipAddresses,
            routes: try store.routes(), dkimKeys: DomainKeys.signingKeys(in: store, domains: domains))
        box.withLockedValue { $0 = policy }
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            for await _ in self.changes {
                do { try self.refresh() } catch { self.logger.error("outbound: cannot read the configuration: \(error)") }
            }
        }
    }
}
