"""Bids on lots: sealed Vickrey bids and their reveals, English bids per round."""

from gridledger.agents.lot_bidding import (LotBid, SealedBids, commit_tx, english_round_draw, open_bids, reveal_tx,
                                           sealed_bids)
from gridledger.agents.prosumer import Order, sealed_bid_salt
from gridledger.contracts.client import Wallet, encode_call
from gridledger.contracts.keys import derive_account
from gridledger.contracts.market import LotState, MarketAddresses, commitment
from tests.agents_der_helpers import AUCTION, CHAIN_ID, REGISTRY, SETTLEMENT, TOKEN, decoded
from tests.secret_helpers import fixed_secret

SEED, K = 42, 5
SECRET = fixed_secret(SEED)
NOBODY = "0x" + "00" * 20
SELLER = "0x" + "99" * 20
BIDDERS = [f"0x{i:040x}" for i in range(1, 9)]


def lot(lot_id, reserve, energy_wh, leader=NOBODY, price=0):
    return LotState(lot_id, SELLER, energy_wh, reserve, leader, price)


def bid_of(limit_wei_per_wh):
    return Order(K, False, 1000, limit_wei_per_wh)


def test_each_buyer_seals_its_limit_on_its_ranked_affordable_lot_for_the_lots_energy():
    lots = [lot(0, 10, 500), lot(1, 50, 700), lot(2, 20, 300)]
    buyers = [(1, bid_of(30)), (4, bid_of(60)), (6, bid_of(5))]
    # rank 0, limit 30: affordable lots 0, 2 -> lot 0; rank 1, limit 60: lots 0, 1, 2 -> lot 1;
    # rank 2, limit 5: none affordable -> no bid
    assert sealed_bids(buyers, lots, SECRET, K) == [
        LotBid(1, 0, Order(K, False, 500, 30), sealed_bid_salt(SECRET, 1, K)),
        LotBid(4, 1, Order(K, False, 700, 60), sealed_bid_salt(SECRET, 4, K)),
    ]


def test_english_buyers_bid_the_least_allowed_price_unless_they_lead_or_cannot_afford():
    lots = [lot(0, 30, 500, leader=BIDDERS[2], price=30), lot(1, 10, 400, leader=BIDDERS[5], price=18)]
    buyers = [(0, bid_of(25)), (2, bid_of(100)), (3, bid_of(19))]
    # increment 2: lot 0 needs 30 + 2 = 32, lot 1 needs 18 + 2 = 20.
    # agent 0 (limit 25) affords lot 1 only; agent 2 leads lot 0; agent 3 (limit 19) affords neither
    assert open_bids(buyers, lots, BIDDERS, 2, SEED, K, 120.0) == [LotBid(0, 1, Order(K, False, 400, 20))]


def test_english_buyer_picks_among_affordable_lots_by_its_seeded_draw():
    lots = [lot(0, 30, 500), lot(1, 20, 400)]
    # both affordable at their reserves, sorted by price: (20, lot 1), (30, lot 0)
    draw = english_round_draw(SEED, 7, K, 180.0)
    expected_lot = [1, 0][int(draw * 2)]
    [chosen] = open_bids([(7, bid_of(100))], lots, BIDDERS, 2, SEED, K, 180.0)
    assert chosen.lot_id == expected_lot
    assert chosen.order.price_wei_per_wh == {1: 20, 0: 30}[expected_lot]
    assert 0.0 <= draw < 1.0
    assert len({english_round_draw(SEED, 7, K, t) for t in (60.0, 120.0, 180.0, 240.0)}) == 4


def sealed(agent, interval, lot_id=0):
    return LotBid(agent, lot_id, Order(interval, False, 100, 40), sealed_bid_salt(SECRET, agent, interval))


def test_reveals_are_the_standing_sealed_bids_of_the_interval_in_agent_order():
    book = SealedBids()
    book.committed(sealed(3, K), nonce=4)
    book.committed(sealed(1, K), nonce=2)
    book.committed(sealed(2, K + 1), nonce=7)
    assert [b.agent for b in book.to_reveal(K)] == [1, 3]
    assert [b.agent for b in book.to_reveal(K + 1)] == [2]


def test_a_bid_whose_commitment_was_rejected_is_not_revealed_and_other_rejections_drop_nothing():
    book = SealedBids()
    book.committed(sealed(1, K), nonce=2)
    book.committed(sealed(3, K), nonce=4)
    book.rejected(3, 5)       # agent 3's nonce 5 was no commitment
    book.rejected(1, 4)       # nonce 4 was agent 3's commitment, not agent 1's
    assert [b.agent for b in book.to_reveal(K)] == [1, 3]
    book.rejected(3, 4)
    assert [b.agent for b in book.to_reveal(K)] == [1]


def test_commit_carries_the_hash_of_bidder_lot_price_and_salt_and_the_reveal_opens_it():
    wallet = Wallet(derive_account(SECRET, "prosumer/p02"), CHAIN_ID)
    addresses = MarketAddresses(REGISTRY, TOKEN, AUCTION, SETTLEMENT, "vickrey")
    bid = sealed(1, K, lot_id=9)
    commit, reveal = decoded(commit_tx(wallet, addresses, bid)), decoded(reveal_tx(wallet, addresses, bid))
    sealed_hash = commitment(wallet.address, 9, 40, bid.salt)
    assert commit.data == encode_call("VickreyAuction", "commit_bid", 9, sealed_hash)
    assert reveal.data == encode_call("VickreyAuction", "reveal_bid", 9, 40, bid.salt)
    assert (commit.nonce, reveal.nonce, commit.to) == (0, 1, AUCTION)
