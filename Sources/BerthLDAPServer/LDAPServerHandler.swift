import BerthCore
import BerthLDAP
import BerthNet
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import NIOTLS

/// One LDAP session: frames messages (`LDAPFramer`), decodes them (`LDAPDecoder`) and
/// answers them one at a time over the directory. Reads stop while a bind's password is
/// checked, while replies go unread, or while a whole message's worth of input waits; so
/// no client grows the server. A message that cannot be read ends the session with the
/// Notice of Disconnection (RFC 4511 §4.1.1); a request that cannot is answered
/// protocolError and the session goes on.
/// Duplex so that it sees NIO's reads: its read gate holds them while it is busy, while
/// replies back up or while input waits (an inbound-only handler never gets `read`, and
/// a client that sends and never reads would fill memory).
final class LDAPServerHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Requests answered in one go before other sessions get the event loop.
    static let messagesPerTurn = 64

    /// Who the session is bound as (RFC 4513 §3).
    enum Identity: Equatable {
        case anonymous
        case user(MailAccount)
    }

    private let connection: ConnectionContext
    private let server: LDAPServer
    private var input = InputBuffer()
    private var gate = ReadGate()
    private var timer = SessionTimer()
    private var log: SessionLog
    private var tls = SessionTLS()
    private var identity = Identity.anonymous
    private var isTLS: Bool
    /// A bind's password check or a large search runs off the event loop; nothing more is
    /// read until it is answered (so requests are answered in order, one at a time).
    private var waiting = false
    /// StartTLS was answered; nothing is read as LDAP until its handshake completes.
    private var startingTLS = false
    private var closed = false
    private var started = false
    private var pendingWrites = false
    private var continuationScheduled = false
    private var failures = 0
    private var stats = (binds: 0, searches: 0, entries: 0)

    init(connection: ConnectionContext, server: LDAPServer) {
        self.connection = connection
        self.server = server
        self.isTLS = connection.isImplicitTLS
        self.log = SessionLog(base: server.configuration.logger, connection: connection)
    }

    private var configuration: LDAPServer.Configuration { server.configuration }

    /// The bytes received and not yet answered, which StartTLS discards (RFC 4513 §3.1.1:
    /// nothing the client sent after the request is read as LDAP).
    struct InputBuffer: BufferedInput {
        var buffer = ByteBuffer()
        mutating func discardBuffered() -> Int {
            defer { buffer.clear() }
            return buffer.readableBytes
        }
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        if tls.start(implicitTLS: connection.isImplicitTLS, log: log) {
            arm(.handshake, context)
        } else {
            arm(.command, context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer.cancel()
        closed = true
        log.event("disconnect", [
            "binds": .stringConvertible(stats.binds), "searches": .stringConvertible(stats.searches),
            "entries": .stringConvertible(stats.entries),
        ])
        context.fireChannelInactive()
    }

    func read(context: ChannelHandlerContext) {
        if gate.readRequested() { context.read() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        var bytes = unwrapInboundIn(data)
        input.buffer.writeBuffer(&bytes)
        process(context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        process(context)
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            _ = tls.handshakeCompleted(context.pipeline, log: &log)
            isTLS = true
            startingTLS = false
            arm(.command, context)
            process(context)
        } else if event is DrainDeadlineEvent || event is DrainEvent {
            // No request is ever left half done: the client is told and the session ends.
            disconnect(.unavailable, "server shutting down", context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !SessionTLS.logFailure(error, log: log) {
            log.event("connection error", ["reason": "\(error)"], level: .debug)
        }
        context.close(promise: nil)
    }

    // MARK: Input

    private var awaitingHandshake: Bool { tls.isHandshakePending || startingTLS }

    private func process(_ context: ChannelHandlerContext) {
        guard !continuationScheduled else { return }
        var turn = 0
        while !closed && !waiting && !awaitingHandshake && context.channel.isWritable {
            turn += 1
            if turn > Self.messagesPerTurn {
                continuationScheduled = true
                let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                context.eventLoop.execute {
                    let (handler, context) = loopBound.value
                    handler.continuationScheduled = false
                    handler.process(context)
                }
                break
            }
            let frame: LDAPFramer.Frame
            do {
                frame = try LDAPFramer.frame(input.buffer.readableBytesView, maxSize: configuration.maxMessageSize)
            } catch {
                log.event("refused", ["reason": .string(error.description)], level: .notice)
                disconnect(.protocolError, error.description, context)
                break
            }
            guard case .message(let length) = frame, let bytes = input.buffer.readBytes(length: length) else { break }
            arm(.command, context)
            handle(bytes, context)
        }
        settle(context)
    }

    private func settle(_ context: ChannelHandlerContext) {
        flushIfNeeded(context)
        guard !closed else { return }
        if waiting {
            timer.disarm()  // waiting for our own work, not for the client
        } else if timer.kind == nil {
            arm(.command, context)  // the check is done: the idle clock runs again
        }
        var reopen = gate.set(.sessionBusy, closed: waiting)
        reopen = gate.set(.replyBacklog, closed: !context.channel.isWritable) || reopen
        // One whole message may wait; more means the client sends faster than it reads.
        reopen = gate.set(.inputBacklog, closed: continuationScheduled || input.buffer.readableBytes > configuration.maxMessageSize) || reopen
        if reopen { context.read() }
        input.buffer.discardReadBytes()
    }

    private func handle(_ bytes: [UInt8], _ context: ChannelHandlerContext) {
        let message: LDAPMessage
        do {
            message = try LDAPDecoder.decode(bytes[...])
        } catch {
            switch error {
            case .malformedMessage(let reason):
                log.event("refused", ["reason": .string(reason)], level: .notice)
                disconnect(.protocolError, reason, context)
            case .malformedRequest(let id, let operation, let reason):
                log.event("bad request", ["id": .stringConvertible(id), "reason": .string(reason)], level: .notice)
                if let operation { send(LDAPEncoder.result(id: id, operation, LDAPResult(.protocolError, diagnosticMessage: reason)), context) }
            }
            return
        }
        // RFC 4511 §4.1.11: a critical control the server does not know fails the request.
        let known: Set<String> = [LDAPControl.pagedResults]
        if let unknown = message.controls.first(where: { $0.criticality && !known.contains($0.type) }),
           let operation = message.request.responseOperation
        {
            reply(message, operation, LDAPResult(.unavailableCriticalExtension, diagnosticMessage: "control \(unknown.type) is not supported"), context)
            return
        }
        switch message.request {
        case .bind(let request): bind(message.id, request, context)
        case .search(let request): search(message, request, context)
        case .extended(let request): extended(message, request, context)
        case .compare(let request): compare(message, request, context)
        case .unbind:
            log.event("unbind")
            closed = true
            flushIfNeeded(context)
            context.close(promise: nil)
        case .abandon:
            break  // every operation is answered before the next is read: nothing to abandon
        case .modify, .add, .delete, .modifyDN:
            reply(message, message.request.responseOperation!, LDAPResult(
                .unwillingToPerform, diagnosticMessage: "the address book is read-only; change users through the admin API"), context)
        }
    }

    // MARK: Bind (RFC 4513 §5)

    private func bind(_ id: Int32, _ request: LDAPBindRequest, _ context: ChannelHandlerContext) {
        stats.binds += 1
        identity = .anonymous  // §4.2.1: a bind, even a failing one, starts from anonymous
        func answer(_ result: LDAPResult) { send(LDAPEncoder.result(id: id, .bind, result), context) }
        guard request.version == 3 else {
            answer(LDAPResult(.protocolError, diagnosticMessage: "only LDAPv3 is supported"))
            return
        }
        let passwordBytes: [UInt8]
        switch request.authentication {
        case .simple(let bytes):
            passwordBytes = bytes
        case .sasl(let mechanism, let credentials):
            saslBind(id, mechanism: mechanism, credentials: credentials, context)
            return
        }
        if request.name.isEmpty && passwordBytes.isEmpty {
            // RFC 4513 §5.1.1: the bind succeeds and the session is anonymous, as before
            // it. Tools (ldapsearch -x) bind so before reading the root DSE; what an
            // anonymous session may read is the `access` settings' to say (`readPolicy`).
            answer(LDAPResult(.success))
            return
        }
        guard !passwordBytes.isEmpty else {
            // §5.1.2: a name without a password is an unauthenticated bind, refused.
            answer(LDAPResult(.unwillingToPerform, diagnosticMessage: "unauthenticated bind (name without password) is not allowed"))
            return
        }
        if let refusal = tlsRefusal {
            answer(refusal)
            return
        }
        checkPassword(id, name: request.name, account: Self.account(named: request.name),
                      password: String(decoding: passwordBytes, as: UTF8.self), context)
    }

    /// RFC 4513 §5.2: SASL PLAIN (RFC 4616), the one mechanism offered: the same check,
    /// delays and bans as a simple bind, and the same refusal before StartTLS on a
    /// `tlsRequired` port.
    private func saslBind(_ id: Int32, mechanism: String, credentials: [UInt8]?, _ context: ChannelHandlerContext) {
        func answer(_ result: LDAPResult) { send(LDAPEncoder.result(id: id, .bind, result), context) }
        guard mechanism.uppercased() == "PLAIN" else {
            answer(LDAPResult(.authMethodNotSupported, diagnosticMessage: "SASL mechanism \(mechanism) is not offered; PLAIN is"))
            return
        }
        if let refusal = tlsRefusal {
            answer(refusal)
            return
        }
        guard let credentials else {
            // The client sends the response after an empty challenge (RFC 4422 §5).
            answer(LDAPResult(.saslBindInProgress))
            return
        }
        guard let (authzid, authcid, password) = SASLServer.splitPlain(credentials) else {
            answer(LDAPResult(.invalidCredentials, diagnosticMessage: "malformed PLAIN message"))
            return
        }
        let user = Self.account(named: authcid)
        // An authorization identity may only name the user itself (§5.2.1.8: "u:" or "dn:").
        let claimed = authzid.hasPrefix("u:") || authzid.hasPrefix("dn:") ? String(authzid.drop { $0 != ":" }.dropFirst()) : authzid
        guard authzid.isEmpty || (user != nil && Self.account(named: claimed) == user) else {
            answer(LDAPResult(.insufficientAccessRights, diagnosticMessage: "acting as another identity is not offered"))
            return
        }
        checkPassword(id, name: authcid, account: user, password: password, context)
    }

    /// `confidentialityRequired` on a `tlsRequired` port before StartTLS (RFC 4513 §3):
    /// binds and searches alike wait for it.
    private var tlsRefusal: LDAPResult? {
        guard connection.spec.tlsRequired && !isTLS else { return nil }
        return LDAPResult(.confidentialityRequired, diagnosticMessage: "send the StartTLS extended operation first")
    }

    /// The password check of a simple or PLAIN bind. A name that is no account fails as a
    /// wrong password does: same delay, same count.
    private func checkPassword(_ id: Int32, name: String, account: String?, password: String, _ context: ChannelHandlerContext) {
        guard let account else {
            verify(id, user: name, password: password, context) { nil }
            return
        }
        let authenticator = server.authenticator
        verify(id, user: account, password: password, context) { authenticator.authenticate(user: account, password: password) }
    }

    /// A bind name as a mail address: `uid=alice,ou=people,dc=example,dc=com` or
    /// `alice@example.com`.
    static func account(named name: String) -> String? {
        if !name.contains("="), name.contains("@") { return name.lowercased() }
        guard let dn = try? LDAPDistinguishedName(parsing: name), dn.rdns.count >= 3,
              dn.rdns[0].count == 1, dn.rdns[0][0].type == "uid",
              dn.rdns[1].count == 1, dn.rdns[1][0].type == "ou", LDAPSchema.fold(dn.rdns[1][0].value) == "people",
              dn.rdns.dropFirst(2).allSatisfy({ $0.count == 1 && $0[0].type == "dc" })
        else { return nil }
        let domain = dn.rdns.dropFirst(2).map { $0[0].value }.joined(separator: ".")
        return "\(dn.rdns[0][0].value)@\(domain)".lowercased()
    }

    private func verify(
        _ id: Int32, user: String, password: String, _ context: ChannelHandlerContext,
        check: @escaping @Sendable () -> MailAccount?
    ) {
        waiting = true
        let found = NIOLockedValueBox<MailAccount?>(nil)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        server.authGuard.check(
            user: user, client: connection.clientAddress, service: "ldap", failuresInSession: failures, log: log.logger,
            on: eventLoop
        ) {
            guard let account = check() else { return false }
            found.withLockedValue { $0 = account }
            return true
        }.whenComplete { result in
            let verdict = (try? result.get()) ?? .busy
            let finish: @Sendable () -> Void = {
                let (handler, context) = loopBound.value
                handler.waiting = false
                guard context.channel.isActive, !handler.closed else { return }
                handler.bound(id, user: user, verdict: verdict, account: found.withLockedValue { $0 }, context)
                handler.process(context)
            }
            if case .rejected(let delay) = verdict, delay > .zero {
                eventLoop.scheduleTask(in: delay) { finish() }
            } else {
                finish()
            }
        }
    }

    private func bound(_ id: Int32, user: String, verdict: AuthVerdict, account: MailAccount?, _ context: ChannelHandlerContext) {
        switch verdict {
        case .accepted where account != nil:
            let account = account!
            identity = .user(account)
            log.set("user", account.address)
            log.event("auth", ["result": "ok"])
            send(LDAPEncoder.result(id: id, .bind, LDAPResult(.success)), context)
        case .accepted, .rejected, .banned:
            // The guard logged the failure with the client's address, for fail2ban.
            failures += 1
            send(LDAPEncoder.result(id: id, .bind, LDAPResult(.invalidCredentials)), context)
            if verdict == .banned { disconnect(.unavailable, "too many failed binds", context) }
        case .busy:
            log.event("auth", ["user": .string(user), "result": "busy"], level: .warning)
            send(LDAPEncoder.result(id: id, .bind, LDAPResult(.busy, diagnosticMessage: "try again later")), context)
        }
    }

    // MARK: Search, compare

    /// What the session may read: nil when it must bind (or start TLS) first.
    private func readPolicy() -> (policy: LDAPDirectory.SearchPolicy?, refusal: LDAPResult?) {
        if let refusal = tlsRefusal { return (nil, refusal) }
        let access = configuration.access()
        let visible: Set<String>?
        switch identity {
        case .user(let account):
            visible = access.allDomains ? nil : [account.domain.lowercased()]
        case .anonymous where access.anonymousSearch:
            // A public address book: an anonymous reader has no domain of its own, so it
            // sees them all (a server with several tenants leaves this off).
            visible = nil
        case .anonymous:
            return (nil, LDAPResult(.insufficientAccessRights, diagnosticMessage: "bind first"))
        }
        return (LDAPDirectory.SearchPolicy(
            visibleDomains: visible, sizeLimit: configuration.sizeLimit, timeLimit: configuration.searchTimeLimit), nil)
    }

    private func search(_ message: LDAPMessage, _ request: LDAPSearchRequest, _ context: ChannelHandlerContext) {
        stats.searches += 1
        let directory = server.directory.directory
        let rootDSE = request.base.isEmpty && request.scope == .baseObject
        let (policy, refusal) = readPolicy()
        guard let policy = policy ?? (rootDSE ? LDAPDirectory.SearchPolicy(sizeLimit: 1) : nil) else {
            reply(message, .searchDone, refusal!, context)
            return
        }
        var paging: (size: Int, cookie: [UInt8])?
        if let control = message.controls.first(where: { $0.type == LDAPControl.pagedResults }) {
            guard let value = LDAPDecoder.pagedResults(control.value) else {
                reply(message, .searchDone, LDAPResult(.protocolError, diagnosticMessage: "bad paged results control value"), context)
                return
            }
            paging = value
        }
        let id = message.id, pages = paging
        let plan = directory.plan(request)
        let answer: @Sendable () -> (bytes: [UInt8], result: LDAPDirectory.SearchResult) = {
            let result = directory.search(request, plan: plan, paging: pages, policy: policy)
            return (Self.encode(result, of: request, id: id), result)
        }
        guard plan.cost > Self.inlineSearchCost, let pool = configuration.searchThreadPool else {
            let (bytes, result) = answer()
            searched(request, result, bytes, context)
            return
        }
        // A search the indexes cannot narrow runs on the pool, so that one client scanning
        // the whole directory does not hold the event loop other sessions share.
        waiting = true
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        pool.runIfActive(eventLoop: context.eventLoop, answer).whenComplete { outcome in
            let (handler, context) = loopBound.value
            handler.waiting = false
            guard context.channel.isActive, !handler.closed else { return }
            switch outcome {
            case .success(let (bytes, result)):
                handler.searched(request, result, bytes, context)
            case .failure:
                handler.reply(message, .searchDone, LDAPResult(.unavailable, diagnosticMessage: "server shutting down"), context)
            }
            handler.process(context)
        }
    }

    /// Entries a search may test on the event loop; more go to the search pool.
    static let inlineSearchCost = 512

    /// The entries and the done message of a search, as one run of bytes.
    static func encode(_ result: LDAPDirectory.SearchResult, of request: LDAPSearchRequest, id: Int32) -> [UInt8] {
        var bytes: [UInt8] = []
        for entry in result.entries {
            bytes += LDAPEncoder.entry(id: id, dn: entry.dn.description, attributes: entry.selecting(request.attributes, typesOnly: request.typesOnly))
        }
        let controls = result.pagedCookie.map { [LDAPEncoder.pagedResultsControl(size: 0, cookie: $0)] } ?? []
        bytes += LDAPEncoder.result(id: id, .searchDone, result.result, controls: controls)
        return bytes
    }

    private func searched(_ request: LDAPSearchRequest, _ result: LDAPDirectory.SearchResult, _ bytes: [UInt8], _ context: ChannelHandlerContext) {
        stats.entries += result.entries.count
        log.event("search", [
            "base": .string(request.base), "scope": .stringConvertible(request.scope.rawValue),
            "entries": .stringConvertible(result.entries.count), "result": .stringConvertible(result.result.code.rawValue),
        ])
        send(bytes, context)
    }

    private func compare(_ message: LDAPMessage, _ request: LDAPCompareRequest, _ context: ChannelHandlerContext) {
        let (policy, refusal) = readPolicy()
        guard let policy else {
            reply(message, .compare, refusal!, context)
            return
        }
        let directory = server.directory.directory
        guard let dn = try? LDAPDistinguishedName(parsing: request.dn) else {
            reply(message, .compare, LDAPResult(.invalidDNSyntax), context)
            return
        }
        let visible = policy.visibleDomains.map { domains in directory.domain(of: dn).map(domains.contains) ?? false } ?? true
        guard let entry = directory.entry(dn), visible, dn != .root else {
            reply(message, .compare, LDAPResult(.noSuchObject), context)
            return
        }
        let truth = LDAPFilter.equalityMatch(attribute: request.attribute, value: request.value)
            .evaluate(entry, knownAttributes: LDAPDirectory.knownAttributes)
        let code: LDAPResultCode = switch truth {
        case .true: .compareTrue
        case .false: .compareFalse
        case .undefined: .undefinedAttributeType
        }
        reply(message, .compare, LDAPResult(code), context)
    }

    // MARK: Extended operations

    private func extended(_ message: LDAPMessage, _ request: LDAPExtendedRequest, _ context: ChannelHandlerContext) {
        switch request.name {
        case LDAPExtendedRequest.startTLS:
            // RFC 4511 §4.14: only on a port that offers it, once, between operations.
            guard connection.spec.encryption == .tls, let tlsContext = connection.tlsContext else {
                reply(message, .extended, LDAPResult(.protocolError, diagnosticMessage: "StartTLS is not offered on this port", responseName: request.name), context)
                return
            }
            guard !isTLS else {
                reply(message, .extended, LDAPResult(.operationsError, diagnosticMessage: "TLS is already on", responseName: request.name), context)
                return
            }
            reply(message, .extended, LDAPResult(.success, responseName: request.name), context)
            flushIfNeeded(context)
            do {
                try SessionTLS.upgrade(context.channel, context: tlsContext, discarding: &input, command: "starttls", log: log)
                startingTLS = true
                arm(.handshake, context)
            } catch {
                context.close(promise: nil)
            }
        case LDAPExtendedRequest.whoAmI:
            // RFC 4532 §2: "u:" and the user, or empty for anonymous.
            let authzID: String = switch identity {
            case .anonymous: ""
            case .user(let account): "u:\(account.address)"
            }
            reply(message, .extended, LDAPResult(.success, responseValue: Array(authzID.utf8)), context)
        default:
            reply(message, .extended, LDAPResult(.protocolError, diagnosticMessage: "extended operation \(request.name) is not supported"), context)
        }
    }

    // MARK: Output

    private func reply(_ message: LDAPMessage, _ operation: LDAPResponseOperation, _ result: LDAPResult, _ context: ChannelHandlerContext) {
        send(LDAPEncoder.result(id: message.id, operation, result), context)
    }

    private func send(_ bytes: [UInt8], _ context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        context.write(wrapOutboundOut(buffer), promise: nil)
        pendingWrites = true
    }

    private func flushIfNeeded(_ context: ChannelHandlerContext) {
        if pendingWrites {
            pendingWrites = false
            context.flush()
        }
    }

    /// RFC 4511 §4.4.1: the Notice of Disconnection, then the end.
    private func disconnect(_ code: LDAPResultCode, _ message: String, _ context: ChannelHandlerContext) {
        guard !closed else { return }
        closed = true
        timer.disarm()
        pendingWrites = false
        let channel = context.channel
        let notice = ByteBuffer(bytes: LDAPEncoder.noticeOfDisconnection(code, message))
        context.writeAndFlush(wrapOutboundOut(notice)).whenComplete { _ in channel.close(promise: nil) }
    }

    // MARK: Deadlines

    private func arm(_ kind: SessionDeadline.Kind, _ context: ChannelHandlerContext) {
        timer.arm(kind, timeouts: configuration.timeouts, on: context.eventLoop) { self.timerFired(context) }
    }

    private func timerFired(_ context: ChannelHandlerContext) {
        let open = context.channel.isActive && !closed
        guard let expired = timer.checkDue(sessionOpen: open, on: context.eventLoop, onCheck: { self.timerFired(context) })
        else { return }
        log.event("timeout", ["during": .string(expired == .handshake ? "tls handshake" : "idle")], level: .notice)
        if expired == .handshake {
            closed = true
            context.close(promise: nil)
        } else {
            // RFC 4511 §4.4.1 names no code for idling; slapd closes quietly too.
            disconnect(.unavailable, "idle timeout", context)
        }
    }
}
