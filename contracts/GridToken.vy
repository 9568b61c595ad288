# pragma version ~=0.4.3
"""
@title GridLedger Settlement Token
@custom:contract-name token
@license BSD-3-Clause
@notice An ERC-20 token (https://eips.ethereum.org/EIPS/eip-20) with
        18 decimals that the market settles in. The deployer is the
        owner and the only minter.
        Functions:
        - `transfer` (`external` function),
        - `approve` (`external` function),
        - `transferFrom` (`external` function),
        - `mint` (`external` function),
        - `name`, `symbol`, `decimals` (`external` `view` functions),
        - `balanceOf`, `allowance`, `totalSupply` (`external` `view` functions),
        - `owner` (`external` `view` function).
        The structure follows snekmate's `erc20.vy`.
@custom:security `approve` has the usual ERC-20 race between an old and a
                 new allowance; set an allowance to zero before changing it.
"""


# @dev We import and implement the built-in `IERC20` interface.
from ethereum.ercs import IERC20
implements: IERC20


# @dev We import and implement the built-in `IERC20Detailed` interface.
from ethereum.ercs import IERC20Detailed
implements: IERC20Detailed


# @dev Name of the token.
name: public(constant(String[25])) = "GridLedger Token"


# @dev Symbol of the token.
symbol: public(constant(String[5])) = "GLT"


# @dev Decimal places of the token: one token is 10**18 base units (wei).
decimals: public(constant(uint8)) = 18


# @dev The only account allowed to mint.
owner: public(immutable(address))


# @dev Balance of each account. [wei]
balanceOf: public(HashMap[address, uint256])


# @dev Amount a spender may still move on behalf of an owner. [wei]
allowance: public(HashMap[address, HashMap[address, uint256]])


# @dev Amount of tokens in existence. [wei]
totalSupply: public(uint256)


@deploy
def __init__(initial_supply: uint256):
    """
    @dev Makes the deployer the owner and mints `initial_supply` to it.
    @param initial_supply Tokens minted to the deployer. [wei]
    """
    owner = msg.sender
    self._mint(msg.sender, initial_supply)


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @dev Moves `amount` from the caller to `to`.
    @param to The receiver; not the zero address.
    @param amount Tokens moved. [wei]
    @return bool Always True; failures revert.
    """
    self._transfer(msg.sender, to, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @dev Lets `spender` move up to `amount` of the caller's tokens.
    @param spender The spender; not the zero address.
    @param amount The new allowance. [wei]
    @return bool Always True; failures revert.
    """
    assert spender != empty(address), "token: approve to the zero address"
    self.allowance[msg.sender][spender] = amount
    log IERC20.Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def transferFrom(sender: address, to: address, amount: uint256) -> bool:
    """
    @dev Moves `amount` from `sender` to `to`, spending the caller's
         allowance.
    @param sender The account debited.
    @param to The receiver; not the zero address.
    @param amount Tokens moved. [wei]
    @return bool Always True; failures revert.
    """
    current_allowance: uint256 = self.allowance[sender][msg.sender]
    assert current_allowance >= amount, "token: insufficient allowance"
    self.allowance[sender][msg.sender] = unsafe_sub(current_allowance, amount)
    log IERC20.Approval(owner=sender, spender=msg.sender, value=unsafe_sub(current_allowance, amount))
    self._transfer(sender, to, amount)
    return True


@external
def mint(to: address, amount: uint256):
    """
    @dev Creates `amount` tokens for `to`.
    @param to The receiver; not the zero address.
    @param amount Tokens created. [wei]
    """
    assert msg.sender == owner, "token: caller is not the owner"
    self._mint(to, amount)


@internal
def _transfer(sender: address, to: address, amount: uint256):
    """
    @dev Moves `amount` from `sender` to `to`.
    @param sender The account debited.
    @param to The receiver; not the zero address.
    @param amount Tokens moved. [wei]
    """
    assert to != empty(address), "token: transfer to the zero address"
    sender_balance: uint256 = self.balanceOf[sender]
    assert sender_balance >= amount, "token: transfer amount exceeds balance"
    self.balanceOf[sender] = unsafe_sub(sender_balance, amount)
    self.balanceOf[to] = unsafe_add(self.balanceOf[to], amount)
    log IERC20.Transfer(sender=sender, receiver=to, value=amount)


@internal
def _mint(to: address, amount: uint256):
    """
    @dev Creates `amount` tokens for `to`, raising the total supply.
    @param to The receiver; not the zero address.
    @param amount Tokens created. [wei]
    """
    assert to != empty(address), "token: mint to the zero address"
    self.totalSupply += amount
    self.balanceOf[to] = unsafe_add(self.balanceOf[to], amount)
    log IERC20.Transfer(sender=empty(address), receiver=to, value=amount)
