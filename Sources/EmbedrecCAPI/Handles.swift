import EmbedrecCore
import Synchronization

/// Live objects behind the opaque handles. A handle is an id, never a pointer to an object,
/// so a freed, forged or wrong-kind handle is an error message instead of a crash; ids count
/// up and are never reused, so a stale handle cannot silently reach a newer object.
final class HandleRegistry: Sendable {
    static let shared = HandleRegistry()

    private struct State {
        var objects: [UInt: AnyObject] = [:]
        var nextId: UInt = 1
    }
    private let state = Mutex(State())

    func register(_ object: AnyObject) -> UnsafeMutableRawPointer {
        let id = state.withLock { s -> UInt in
            let id = s.nextId
            s.nextId += 1
            s.objects[id] = object
            return id
        }
        // Shifted so that handles look like aligned pointers to C debuggers; never dereferenced.
        return UnsafeMutableRawPointer(bitPattern: id << 4)!
    }

    func lookup<T: AnyObject>(_ handle: UnsafeMutableRawPointer?, as type: T.Type, kind: String) throws -> T {
        guard let handle else { throw CoreError(.invalidHandle, "\(kind) handle is NULL") }
        let id = UInt(bitPattern: handle) >> 4
        let object = state.withLock { $0.objects[id] }
        guard let object else {
            throw CoreError(.invalidHandle, "\(kind) handle \(handle) is not live (already freed, or never created)")
        }
        guard let typed = object as? T else {
            throw CoreError(.invalidHandle, "handle \(handle) is not a \(kind) handle")
        }
        return typed
    }

    /// Removes a handle whose object passes `accepts` (e.g. any kind of model).
    func remove(_ handle: UnsafeMutableRawPointer?, kind: String, accepts: (AnyObject) -> Bool) throws {
        let object = try lookup(handle, as: AnyObject.self, kind: kind)
        guard accepts(object) else { throw CoreError(.invalidHandle, "handle \(handle!) is not a \(kind) handle") }
        let id = UInt(bitPattern: handle) >> 4
        _ = state.withLock { $0.objects.removeValue(forKey: id) }
    }

    func remove<T: AnyObject>(_ handle: UnsafeMutableRawPointer?, as type: T.Type, kind: String) throws {
        _ = try lookup(handle, as: type, kind: kind)
        let id = UInt(bitPattern: handle) >> 4
        _ = state.withLock { $0.objects.removeValue(forKey: id) }
    }

    var liveCount: Int { state.withLock { $0.objects.count } }

    /// The shape of every create function: a NULL `out` is an error before anything is made;
    /// `*out` is NULL unless `make` succeeds, and then holds the new object's handle.
    func create(_ out: UnsafeMutablePointer<UnsafeMutableRawPointer?>?, _ make: () throws -> AnyObject) throws {
        guard let out else { throw CoreError.invalid("out (the handle destination) is NULL") }
        out.pointee = nil
        out.pointee = register(try make())
    }
}

/// The trainer handle's object: the core trainer plus nothing else the C side needs.
final class TrainerBox {
    let trainer: Trainer
    init(_ trainer: Trainer) { self.trainer = trainer }
}
