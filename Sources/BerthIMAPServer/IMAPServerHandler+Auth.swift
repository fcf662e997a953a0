import BerthCore
import BerthIMAP
import BerthNet
import Foundation
import NIOCore

/// Command dispatch, and the commands of any state and of the not-authenticated state
/// (RFC 3501 §6.1, §6.2).
extension IMAPServerHandler {
    /// Which state a command needs (RFC 3501 §3).
    private enum Needs {
        case any, notAuthenticated, authenticated, selected
    }

    private static func needs(_ kind: IMAPCommand.Kind) -> Needs {
        switch kind {
        case .capability, .noop, .logout, .id: .any
        case .startTLS, .authenticate, .login: .notAuthenticated
        case .select, .examine, .create, .delete, .rename, .subscribe, .unsubscribe, .list, .lsub, .status, .append,
            .namespace, .enable, .idle, .getQuota, .getQuotaRoot, .setQuota:
            .authenticated
        case .check, .close, .unselect, .expunge, .uidExpunge, .search, .fetch, .store, .copy, .move: .selected
        }
    }

    func run(_ command: IMAPCommand) {
        let tag = command.tag
        let needs = Self.needs(command.kind)
        // BINDINGS.md tlsRequired: before TLS only what leads to it (RFC 8314 §3.2 spirit).
        if capabilities.tlsRequired && !isTLS && needs != .any && !(command.kind == .startTLS) {
            write(.tagged(tag: tag, .no, code: .privacyRequired, text: "TLS required: use STARTTLS first"))
            commandFinished()
            return
        }
        switch needs {
        case .any: break
        case .notAuthenticated:
            guard account == nil else { return bad(tag, "Already authenticated") }
        case .authenticated:
            guard account != nil else { return bad(tag, "Not authenticated: LOGIN first") }
        case .selected:
            guard account != nil, selected != nil else { return bad(tag, "No mailbox selected") }
        }
        switch command.kind {
        case .capability:
            write(.data(.capability(capabilityList)))
            complete(tag, .ok, text: "CAPABILITY completed")
        case .noop:
            complete(tag, .ok, text: "NOOP completed", refresh: true)
        case .logout:
            // RFC 3501 §6.1.3: BYE, then the tagged OK, then close.
            write(.untagged(.bye, text: "Logging out"))
            write(.tagged(tag: tag, .ok, text: "LOGOUT completed"))
            mode = .closed
            observation?.cancel()
            observation = nil
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { _ in
                channel.close(promise: nil)
            }
        case .id(let fields):
            // RFC 2971 §3.1; what the client sent is logged, not trusted.
            if let fields {
                let text = fields.prefix(8).map { "\($0.name)=\($0.value ?? "NIL")" }.joined(separator: " ")
                log.event("client id", ["id": .string(String(text.prefix(200)))])
            }
            write(.data(.id([IMAPIDField("name", "Berth")])))
            complete(tag, .ok, text: "ID completed")
        case .startTLS:
            startTLS(tag)
        case .login(let user, let password):
            guard capabilities.loginAllowed(isTLS: isTLS) else {
                write(.tagged(tag: tag, .no, code: .privacyRequired, text: "Plaintext authentication disallowed without TLS"))
                return commandFinished()
            }
            verify(tag: tag, user: user, password: password)
        case .authenticate(let mechanism, let initialResponse):
            authenticate(tag: tag, mechanism: mechanism, initialResponse: initialResponse)
        case .select(let name, let parameters):
            select(tag: tag, name: name, parameters: parameters, readOnly: false)
        case .examine(let name, let parameters):
            select(tag: tag, name: name, parameters: parameters, readOnly: true)
        case .create(let name): create(tag: tag, name: name)
        case .delete(let name): delete(tag: tag, name: name)
        case .rename(let from, let to): rename(tag: tag, from: from, to: to)
        case .subscribe(let name): subscribe(tag: tag, name: name, true)
        case .unsubscribe(let name): subscribe(tag: tag, name: name, false)
        case .list(let list): self.list(tag: tag, list)
        case .lsub(let reference, let pattern): lsub(tag: tag, reference: reference, pattern: pattern)
        case .status(let name, let attributes): status(tag: tag, name: name, attributes: attributes)
        case .append(let command): finishAppend(tag: tag, command)
        case .namespace:
            // RFC 2342: one personal namespace, no prefix, "/" between levels.
            write(.data(.namespace(personal: [IMAPNamespace(prefix: "", delimiter: "/")], otherUsers: [], shared: [])))
            complete(tag, .ok, text: "NAMESPACE completed")
        case .enable(let names): enable(tag: tag, names)
        case .idle: idle(tag: tag)
        case .getQuota(let root): getQuota(tag: tag, root: root)
        case .getQuotaRoot(let name): getQuotaRoot(tag: tag, name: name)
        case .setQuota:
            complete(tag, .no, code: .noPerm, text: "Quotas are set by the administrator")
        case .check:
            complete(tag, .ok, text: "CHECK completed", refresh: true)
        case .close: close(tag: tag)
        case .unselect:
            deselect()
            complete(tag, .ok, text: "UNSELECT completed")
        case .expunge: expunge(tag: tag, only: nil)
        case .uidExpunge(let set): expunge(tag: tag, only: set)
        case .search(let search, let uid): self.search(tag: tag, search, uid: uid)
        case .fetch(let set, let attributes, let modifiers, let uid):
            fetch(tag: tag, set: set, attributes: attributes, modifiers: modifiers, uid: uid)
        case .store(let set, let action, let unchangedSince, let uid):
            store(tag: tag, set: set, action: action, unchangedSince: unchangedSince, uid: uid)
        case .copy(let set, let name, let uid): copy(tag: tag, set: set, to: name, uid: uid, move: false)
        case .move(let set, let name, let uid): copy(tag: tag, set: set, to: name, uid: uid, move: true)
        }
    }

    // MARK: STARTTLS (RFC 3501 §6.2.1)

    private func startTLS(_ tag: String) {
        guard !isTLS else { return bad(tag, "TLS is already active") }
        guard capabilities.startTLSAvailable, let tlsContext = connection.tlsContext else {
            return bad(tag, "STARTTLS is not available on this port")
        }
        write(.tagged(tag: tag, .ok, text: "Begin TLS negotiation now"))
        flushIfNeeded()
        do {
            // Bytes pipelined after STARTTLS were not sent over TLS: never run them.
            try SessionTLS.upgrade(context.channel, context: tlsContext, discarding: &framer, command: "starttls", log: log)
            mode = .startingTLS
            arm(.handshake)
        } catch {
            mode = .closed
            context.close(promise: nil)
        }
    }

    // MARK: Authentication

    private func authenticate(tag: String, mechanism: String, initialResponse: String?) {
        guard capabilities.loginAllowed(isTLS: isTLS) else {
            write(.tagged(tag: tag, .no, code: .privacyRequired, text: "Plaintext authentication disallowed without TLS"))
            return commandFinished()
        }
        guard mechanism.uppercased() == "PLAIN" || mechanism.uppercased() == "LOGIN" else {
            write(.tagged(tag: tag, .no, text: "Unsupported authentication mechanism"))
            return commandFinished()
        }
        // SASL-IR (RFC 4959): "=" is an empty initial response; the parser gives "".
        saslStep(sasl.start(mechanism: mechanism, initialResponse: initialResponse.map { $0.isEmpty ? "=" : $0 }), tag: tag)
    }

    func saslResponse(_ line: IMAPCommandBytes, tag: String) {
        mode = .command
        switch IMAPCommandParser.parseAuthenticationResponse(line) {
        case .success(.cancel):
            sasl.reset()
            bad(tag, "Authentication cancelled")
        case .success(.response(let text)):
            saslStep(sasl.respond(text), tag: tag)
        case .failure:
            sasl.reset()
            bad(tag, "Invalid base64 in authentication response")
        }
    }

    private func saslStep(_ step: SASLServer.Step, tag: String) {
        switch step {
        case .challenge(let text):
            mode = .sasl(tag: tag)
            write(.continuation(text))
        case .verify(let user, let password):
            verify(tag: tag, user: user, password: password)
        case .failed(.cancelled):
            bad(tag, "Authentication cancelled")
        case .failed(.authorizationIdentity):
            authFailures += 1
            write(.tagged(tag: tag, .no, code: .authorizationFailed, text: "Acting as another user is not allowed"))
            commandFinished()
        case .failed:
            bad(tag, "Invalid authentication data")
        }
    }

    /// The password check runs on the auth guard's pool; a failure is answered after the
    /// guard's growing delay, a ban ends the session.
    private func verify(tag: String, user: String, password: String) {
        busy = true
        let found = AccountBox()
        let authenticator = server.authenticator
        let check: @Sendable () -> Bool = {
            let account = authenticator.authenticate(user: user, password: password)
            found.set(account)
            return account != nil
        }
        let service = connection.spec.protocol.rawValue
        let verdict: EventLoopFuture<AuthVerdict>
        if server.configuration.threadPool != nil {
            verdict = server.authGuard.check(
                user: user, client: connection.clientAddress, service: service, failuresInSession: authFailures,
                log: log.logger, on: context.eventLoop, verify: check)
        } else {
            // Tests: the check runs on the (embedded) loop, the guard still counts it.
            let guardian = server.authGuard, client = connection.clientAddress, failures = authFailures
            let logger = log.logger
            verdict = context.eventLoop.submit {
                guardian.record(valid: check(), user: user, client: client, service: service, failuresInSession: failures, log: logger)
            }
        }
        settle(commandDone: false)
        verdict.assumeIsolated().whenSuccess { verdict in
            guard self.mode != .closed else { return }
            switch verdict {
            case .accepted:
                guard let account = found.value else { return }
                self.account = account
                self.log.set("user", account.address)
                self.log.event("auth", ["result": "ok"])
                self.busy = false
                // RFC 3501 §6.2.3 allows the new capabilities in the OK (clients skip a CAPABILITY).
                self.write(.tagged(tag: tag, .ok, code: .capability(self.capabilityList), text: "Logged in"))
                self.commandFinished()
            case .rejected(let delay):
                self.authFailures += 1
                self.context.eventLoop.assumeIsolated().scheduleTask(in: delay) {
                    guard self.mode != .closed else { return }
                    self.busy = false
                    self.write(.tagged(tag: tag, .no, code: .authenticationFailed, text: "Authentication failed"))
                    self.commandFinished()
                }
            case .banned:
                self.log.event("auth", ["result": "banned"], level: .notice)
                self.bye("Too many authentication failures; try again later")
            case .busy:
                self.log.event("auth", ["user": .string(user), "result": "busy"], level: .warning)
                self.busy = false
                self.write(.tagged(tag: tag, .no, code: .unavailable, text: "Temporary authentication failure; try again later"))
                self.commandFinished()
            }
        }
    }
}

/// The account a password check found, handed from the auth pool to the event loop.
final class AccountBox: @unchecked Sendable {
    private let lock = NSLock()
    private var account: MailAccount?

    func set(_ account: MailAccount?) { lock.withLock { self.account = account } }
    var value: MailAccount? { lock.withLock { account } }
}
