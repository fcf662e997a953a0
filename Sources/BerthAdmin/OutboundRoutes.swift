import BerthCore
import BerthNet
import BerthStore
import Foundation
import Hummingbird

/// Outbound delivery in the admin API (issue 6): the queue, static routes, DKIM records.
extension AdminAPI {
    func addOutboundRoutes(to api: RouterGroup<AdminRequestContext>) {
        let store = self.store
        let queueChanged = self.queueChanged

        // MARK: Queue
        api.get("queue") { _, _ -> Response in try JSONResponse.make(try store.queuedMessages()) }
        api.get("queue/:id") { _, context -> Response in
            let id = try context.parameters.require("id")
            guard let message = try store.queuedMessages(queueID: id).first else {
                throw APIError(.notFound("no queued message '\(id)'"))
            }
            return try JSONResponse.make(message)
        }
        api.post("queue/:id/retry") { _, context -> Response in
            let id = try context.parameters.require("id")
            try Self.mapErrors { try store.retryQueued(queueID: id) }
            await queueChanged()
            context.logger.info("queue: retry \(id)")
            guard let message = try store.queuedMessages(queueID: id).first else {
                throw APIError(.notFound("no queued message '\(id)'"))
            }
            return try JSONResponse.make(message)
        }
        api.post("queue/retry") { _, context -> Response in
            let count = try store.retryQueued(queueID: nil)
            await queueChanged()
            context.logger.info("queue: retry all (\(count) recipients)")
            return try JSONResponse.make(["recipients": count])
        }
        api.delete("queue/:id") { _, context -> Response in
            let id = try context.parameters.require("id")
            let path = try Self.mapErrors { try store.deleteQueued(queueID: id) }
            unlink(path)
            await queueChanged()
            context.logger.info("queue: deleted \(id)")
            return Response(status: .noContent)
        }

        // MARK: Static routes
        api.get("routes") { _, _ -> Response in try JSONResponse.make(try store.routes()) }
        api.get("routes/:domain") { _, context -> Response in
            let domain = try context.parameters.require("domain").lowercased()
            guard let route = try store.routes().first(where: { $0.domain == domain }) else {
                throw APIError(.notFound("no route for '\(domain)'"))
            }
            return try JSONResponse.make(route)
        }
        api.put("routes/:domain") { request, context -> Response in
            let domain = try context.parameters.require("domain")
            let body = try await JSONResponse.decode(OutboundRoute.Body.self, from: request)
            let route = try Self.mapErrors { try OutboundRoute.validated(domain: domain, body) }
            try store.saveRoute(route)
            return try JSONResponse.make(route)
        }
        api.delete("routes/:domain") { _, context -> Response in
            let domain = try context.parameters.require("domain")
            try Self.mapErrors { try store.deleteRoute(domain: domain) }
            return Response(status: .noContent)
        }

        // MARK: DKIM
        api.get("domains/:name/dkim") { _, context -> Response in
            let name = try context.parameters.require("name").lowercased()
            let keys = try Self.mapErrors { () throws -> [StoredDKIMKey] in
                guard try store.domain(name) != nil else { throw BindingsError.notFound("no domain '\(name)'") }
                return try DomainKeys.ensure(name, in: store)
            }
            return try JSONResponse.make(DomainKeys.View(domain: name, keys: keys))
        }
        api.post("domains/:name/dkim/rotate") { _, context -> Response in
            let name = try context.parameters.require("name").lowercased()
            let keys = try Self.mapErrors { () throws -> [StoredDKIMKey] in
                guard try store.domain(name) != nil else { throw BindingsError.notFound("no domain '\(name)'") }
                return try DomainKeys.rotate(name, in: store)
            }
            context.logger.info("dkim: rotated the keys of \(name)")
            return try JSONResponse.make(DomainKeys.View(domain: name, keys: keys))
        }
    }
}
