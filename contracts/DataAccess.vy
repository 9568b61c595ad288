# pragma version ~=0.4.3
"""
@title Data Access by Contract of a GridLedger Market
@custom:contract-name data_access
@license BSD-3-Clause
@notice A requestor buys an aggregate of households' data without ever
        seeing the data, after Wang et al. (SPDS): it `propose`s a query
        from a fixed catalogue (its code, an ε for the noise, 0 for an
        exact answer) to a list of owners at a price per owner, and locks
        price x owners of its tokens; each listed owner may `approve`
        before the approval deadline; then the worker (an account fixed
        at deployment, with no registry role) computes off chain over the
        approving owners' stores only and posts the hash of the answer
        and a commitment to its inputs (`post_result`). The requestor
        `accept`s, or anyone `finalize`s once `accept_window_s` has
        passed: each approving owner is paid its price and the rest of
        the lock returns to the requestor. Without a result by the
        result deadline, or without any approval, anyone `cancel`s and
        the whole lock returns.
        Functions:
        - `propose` (`external` function, anyone but the worker),
        - `approve` (`external` function, a listed owner),
        - `post_result` (`external` function, the worker),
        - `accept` (`external` function, the requestor),
        - `finalize`, `cancel` (`external` functions, anyone),
        - `request_of`, `owners_of`, `approved` (`external` `view`
          functions).
        States: NONE -> PROPOSED -> RESULT_POSTED -> PAID; PROPOSED ->
        CANCELLED.
@custom:security Raw data never touches the chain: only the code, ε, the
                 answer's hash and the inputs commitment. An owner's data
                 is used only with its approval (the worker commits to
                 how many owners it used, which must equal the approvals
                 on chain). Tokens move in once per request and out once:
                 the contract holds the sum of the open requests' locks.
"""

from ethereum.ercs import IERC20


# @dev The market's registry: who is a prosumer, who holds a role.
interface Registry:
    def has_role(account: address, role: uint256) -> bool: view
    def roles(account: address) -> uint256: view


# @dev One request: its state, terms, deadlines and result.
struct Request:
    status: uint256
    requestor: address
    code: uint256
    epsilon_milli: uint256
    price_per_owner_wei: uint256
    approval_deadline_timestamp: uint256
    result_deadline_timestamp: uint256
    approvals: uint256
    result_hash: bytes32
    inputs_commitment: bytes32
    result_timestamp: uint256


# @dev Codes of `status`.
STATUS_NONE: public(constant(uint256)) = 0
STATUS_PROPOSED: public(constant(uint256)) = 1
STATUS_RESULT_POSTED: public(constant(uint256)) = 2
STATUS_PAID: public(constant(uint256)) = 3
STATUS_CANCELLED: public(constant(uint256)) = 4


# @dev Entries of the catalogue (`gridledger.agents.data_catalogue.QUERIES`).
CATALOGUE_SIZE: public(constant(uint256)) = 3


# @dev Most owners of one request.
MAX_OWNERS: public(constant(uint256)) = 64


# @dev Largest price per owner. [wei]
MAX_PRICE_WEI: public(constant(uint256)) = 10**24


# @dev Longest time from a proposal to its result deadline: 30 days. [s]
MAX_HORIZON_S: public(constant(uint256)) = 30 * 86400


# @dev Registry role bit of prosumers (`Registry.ROLE_PROSUMER`).
ROLE_PROSUMER: constant(uint256) = 2


# @dev The market's registry.
registry: public(immutable(Registry))


# @dev The token requests are paid in.
token: public(immutable(IERC20))


# @dev The compute worker.
worker: public(immutable(address))


# @dev How long the requestor has to accept a result before anyone may finalize it. [s]
accept_window_s: public(immutable(uint256))


# @dev Requests by id.
_requests: HashMap[bytes32, Request]


# @dev Each request's owners, in the order proposed.
_owners: HashMap[bytes32, DynArray[address, MAX_OWNERS]]


# @dev Whether an owner is listed in a request.
_listed: HashMap[bytes32, HashMap[address, bool]]


# @dev Whether a listed owner approved a request.
approved: public(HashMap[bytes32, HashMap[address, bool]])


# @dev Emitted when a requestor proposes a query.
event Requested:
    request_id: indexed(bytes32)
    requestor: indexed(address)
    code: uint256
    epsilon_milli: uint256
    price_per_owner_wei: uint256
    owners: uint256


# @dev Emitted when a listed owner approves.
event Approved:
    request_id: indexed(bytes32)
    owner: indexed(address)


# @dev Emitted when the worker posts a result.
event ResultPosted:
    request_id: indexed(bytes32)
    result_hash: bytes32
    inputs_commitment: bytes32
    owners_used: uint256


# @dev Emitted for each approving owner paid.
event Paid:
    request_id: indexed(bytes32)
    owner: indexed(address)
    amount_wei: uint256


# @dev Emitted when the requestor gets back what was not paid out.
event Refunded:
    request_id: indexed(bytes32)
    amount_wei: uint256


# @dev Emitted when a request is cancelled.
event Cancelled:
    request_id: indexed(bytes32)
    reason: String[64]


@deploy
def __init__(registry_: Registry, token_: IERC20, worker_: address, accept_window_s_: uint256):
    """
    @param registry_ The market's registry; owners are its prosumers.
    @param token_ The market's token.
    @param worker_ The compute worker; holds no registry role.
    @param accept_window_s_ The requestor's time to accept; 1 to 30 days. [s]
    """
    assert worker_ != empty(address) and staticcall registry_.roles(worker_) == 0, "data: worker holds a role"
    assert accept_window_s_ != 0 and accept_window_s_ <= MAX_HORIZON_S, "data: window out of range"
    registry = registry_
    token = token_
    worker = worker_
    accept_window_s = accept_window_s_


@external
def propose(
    request_id: bytes32,
    code: uint256,
    epsilon_milli: uint256,
    price_per_owner_wei: uint256,
    owners: DynArray[address, MAX_OWNERS],
    approval_deadline_timestamp: uint256,
    result_deadline_timestamp: uint256,
):
    """
    @dev Proposes catalogue query `code` to `owners` and locks price x
         owners of the caller's tokens (approved to this contract);
         anyone but the worker, with a fresh id.
    @param request_id The request's id, chosen by the requestor.
    @param code The catalogue entry; below `CATALOGUE_SIZE`.
    @param epsilon_milli ε of the noise in thousandths; 0 for an exact answer.
    @param price_per_owner_wei What each approving owner is paid; 1 to `MAX_PRICE_WEI`. [wei]
    @param owners Registered prosumers, each once, 1 to `MAX_OWNERS`.
    @param approval_deadline_timestamp Owners approve before it. [s since the Unix epoch]
    @param result_deadline_timestamp The worker posts before it; after the
           approval deadline and at most `MAX_HORIZON_S` ahead. [s since the Unix epoch]
    """
    assert msg.sender != worker, "data: the worker may not request"
    assert self._requests[request_id].status == STATUS_NONE, "data: id taken"
    assert code < CATALOGUE_SIZE, "data: unknown query"
    assert len(owners) != 0, "data: no owners"
    assert price_per_owner_wei != 0 and price_per_owner_wei <= MAX_PRICE_WEI, "data: price out of range"
    assert (
        approval_deadline_timestamp > block.timestamp
        and result_deadline_timestamp > approval_deadline_timestamp
        and result_deadline_timestamp <= block.timestamp + MAX_HORIZON_S
    ), "data: deadlines out of range"
    for owner: address in owners:
        assert staticcall registry.has_role(owner, ROLE_PROSUMER), "data: owner is not a prosumer"
        assert not self._listed[request_id][owner], "data: owner listed twice"
        self._listed[request_id][owner] = True
    self._owners[request_id] = owners
    self._requests[request_id] = Request(
        status=STATUS_PROPOSED,
        requestor=msg.sender,
        code=code,
        epsilon_milli=epsilon_milli,
        price_per_owner_wei=price_per_owner_wei,
        approval_deadline_timestamp=approval_deadline_timestamp,
        result_deadline_timestamp=result_deadline_timestamp,
        approvals=0,
        result_hash=empty(bytes32),
        inputs_commitment=empty(bytes32),
        result_timestamp=0,
    )
    log Requested(
        request_id=request_id,
        requestor=msg.sender,
        code=code,
        epsilon_milli=epsilon_milli,
        price_per_owner_wei=price_per_owner_wei,
        owners=len(owners),
    )
    assert extcall token.transferFrom(msg.sender, self, price_per_owner_wei * len(owners)), "data: lock failed"


@external
def approve(request_id: bytes32):
    """
    @dev Approves the use of the caller's data for the request; a listed
         owner, once, before the approval deadline.
    @param request_id The request.
    """
    r: Request = self._requests[request_id]
    assert r.status == STATUS_PROPOSED, "data: not proposed"
    assert self._listed[request_id][msg.sender], "data: caller is not a listed owner"
    assert block.timestamp < r.approval_deadline_timestamp, "data: approval closed"
    assert not self.approved[request_id][msg.sender], "data: already approved"
    self.approved[request_id][msg.sender] = True
    self._requests[request_id].approvals = r.approvals + 1
    log Approved(request_id=request_id, owner=msg.sender)


@external
def post_result(request_id: bytes32, result_hash: bytes32, inputs_commitment: bytes32, owners_used: uint256):
    """
    @dev Posts the hash of the answer and the commitment to its inputs;
         the worker only, between the approval and the result deadline,
         having used exactly the approving owners' data.
    @param request_id The request.
    @param result_hash Keccak-256 of the answer.
    @param inputs_commitment Keccak-256 over the owners used and their stores.
    @param owners_used How many owners' data the answer used.
    """
    assert msg.sender == worker, "data: caller is not the worker"
    r: Request = self._requests[request_id]
    assert r.status == STATUS_PROPOSED, "data: not proposed"
    assert block.timestamp >= r.approval_deadline_timestamp, "data: approval still open"
    assert block.timestamp < r.result_deadline_timestamp, "data: result deadline passed"
    assert r.approvals != 0, "data: no approvals"
    assert owners_used == r.approvals, "data: owners used are not the approvals"
    self._requests[request_id].status = STATUS_RESULT_POSTED
    self._requests[request_id].result_hash = result_hash
    self._requests[request_id].inputs_commitment = inputs_commitment
    self._requests[request_id].result_timestamp = block.timestamp
    log ResultPosted(
        request_id=request_id, result_hash=result_hash, inputs_commitment=inputs_commitment, owners_used=owners_used
    )


@external
def accept(request_id: bytes32):
    """
    @dev Accepts the posted result and pays the approving owners; the
         requestor only.
    @param request_id The request.
    """
    r: Request = self._requests[request_id]
    assert r.status == STATUS_RESULT_POSTED, "data: no result"
    assert msg.sender == r.requestor, "data: caller is not the requestor"
    self._pay(request_id, r)


@external
def finalize(request_id: bytes32):
    """
    @dev Pays the approving owners once the requestor's accept window
         has passed; anyone.
    @param request_id The request.
    """
    r: Request = self._requests[request_id]
    assert r.status == STATUS_RESULT_POSTED, "data: no result"
    assert block.timestamp >= r.result_timestamp + accept_window_s, "data: accept window open"
    self._pay(request_id, r)


@external
def cancel(request_id: bytes32):
    """
    @dev Cancels a request without a result: after its result deadline,
         or once its approval deadline has passed without approvals;
         anyone. The whole lock returns to the requestor.
    @param request_id The request.
    """
    r: Request = self._requests[request_id]
    assert r.status == STATUS_PROPOSED, "data: not proposed"
    reason: String[64] = "data: result deadline passed"
    if block.timestamp < r.result_deadline_timestamp:
        assert block.timestamp >= r.approval_deadline_timestamp and r.approvals == 0, "data: request still open"
        reason = "data: no owner approved"
    self._requests[request_id].status = STATUS_CANCELLED
    refund_wei: uint256 = r.price_per_owner_wei * len(self._owners[request_id])
    log Cancelled(request_id=request_id, reason=reason)
    log Refunded(request_id=request_id, amount_wei=refund_wei)
    assert extcall token.transfer(r.requestor, refund_wei), "data: refund failed"


@external
@view
def request_of(request_id: bytes32) -> Request:
    """
    @dev The request as stored.
    @param request_id The request.
    @return Request Its state, terms, deadlines and result.
    """
    return self._requests[request_id]


@external
@view
def owners_of(request_id: bytes32) -> DynArray[address, MAX_OWNERS]:
    """
    @dev The request's owners, in the order proposed.
    @param request_id The request.
    @return DynArray[address, MAX_OWNERS] Their accounts.
    """
    return self._owners[request_id]


@internal
def _pay(request_id: bytes32, r: Request):
    """
    @dev Pays each approving owner its price and refunds the rest of the
         lock to the requestor; the request is paid.
    @param request_id The request.
    @param r The request as stored.
    """
    self._requests[request_id].status = STATUS_PAID
    owners: DynArray[address, MAX_OWNERS] = self._owners[request_id]
    refund_wei: uint256 = r.price_per_owner_wei * (len(owners) - r.approvals)
    for owner: address in owners:
        if self.approved[request_id][owner]:
            log Paid(request_id=request_id, owner=owner, amount_wei=r.price_per_owner_wei)
            assert extcall token.transfer(owner, r.price_per_owner_wei), "data: payment failed"
    log Refunded(request_id=request_id, amount_wei=refund_wei)
    if refund_wei != 0:
        assert extcall token.transfer(r.requestor, refund_wei), "data: refund failed"
