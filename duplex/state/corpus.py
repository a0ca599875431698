"""The written lines of the state decision's training set: what is spoken (by the voices in ``VOICES``) and
labelled. Queries and bare controls are QUERY; declaratives, talk to someone else and backchannels IGNORE; the
assistant's answers come back as echo; short replies are QUERY after one of ``REPLY_QUESTIONS`` only.
"""

QUERIES = [
    # questions
    "What time is it in Tokyo?", "What's the weather like tomorrow?", "How far is the moon from the earth?",
    "Who wrote Pride and Prejudice?", "What is the capital of Australia?", "How do I boil an egg?",
    "Can you tell me a joke?", "What's twelve times fifteen?", "When does the sun set today?",
    "Is it going to rain this afternoon?", "How many ounces are in a pound?", "Why is the sky blue?",
    "What does photosynthesis mean?", "Where is the nearest pharmacy?", "Could you explain how vaccines work?",
    "What should I cook for dinner tonight?", "How long should I bake a potato?", "Who won the world cup in 2018?",
    "What's a good name for a goldfish?", "How do you say thank you in Japanese?",
    "What year did the Berlin wall fall?",
    "Can you recommend a good science fiction book?", "How tall is Mount Everest?", "What's the square root of 144?",
    "Do I need an umbrella today?", "What is the boiling point of water in Fahrenheit?", "Which planet is the largest?",
    "How many calories are in a banana?", "What's on my calendar tomorrow?", "Any new messages?",
    "How do I get to the train station?", "What's the difference between a virus and a bacterium?",
    "Can you help me with my homework?", "What time does the store close?", "How old is the universe?",
    "Who painted the Mona Lisa?", "Is there traffic on the way to work?", "What's the exchange rate for euros?",
    "How do I reset my router?", "What rhymes with orange?", "Could you spell necessary for me?",
    "What's a synonym for happy?", "How much water should I drink a day?", "When is my next appointment?",
    "Are there any good restaurants nearby?", "What is the speed of light?", "Why do cats purr?",
    "How do I remove a coffee stain?", "What's the population of Canada?", "Would you read me the news?",
    "Can you translate good morning into French?", "Which is bigger, a liter or a quart?",
    "What did I ask you yesterday?", "How does a rainbow form?", "What's the best way to learn guitar?",
    "Is the pharmacy open on Sunday?", "How long is the flight from London to New York?",
    "What is the meaning of the word ephemeral?", "Hey assistant, what's the temperature outside?",
    "Can you play something relaxing?", "How many days until Christmas?", "What's seven percent of two hundred?",
    "Who is the president of France?", "How do I make pancakes?", "What are the symptoms of the flu?",
    "Can you find me a recipe for lasagna?", "What's the score of the game?", "Do you know any riddles?",
    "How do airplanes stay in the air?", "What's the tallest building in the world?",
    "How many teaspoons are in a tablespoon?", "Will it be sunny this weekend?", "What time is my alarm set for?",
    "Could you summarize this article for me?", "How is the stock market doing today?",
    "What's the fastest animal on land?", "Where did I leave my keys, any idea?",
    "How do you convert miles to kilometers?",
    "What's the first line of the Odyssey?", "Can you remind me what we talked about?",
    # commands
    "Set a timer for ten minutes.", "Turn off the kitchen lights.", "Play some jazz music.",
    "Remind me to call mom at six.",
    "Call the dentist.", "Add milk to my shopping list.", "Turn the volume up.", "Volume down, please.",
    "Stop the music.", "Pause the podcast.", "Skip this song.", "Wake me up at seven tomorrow.",
    "Tell me a story about a dragon.", "Read me my latest email.", "Send a text to John saying I'm running late.",
    "Open the garage door.", "Set the thermostat to seventy degrees.", "Cancel my three o'clock meeting.",
    "Schedule a meeting with Sarah on Friday.", "Translate where is the bathroom into Spanish.",
    "Explain quantum computing in simple terms.", "Define the word serendipity.", "Convert fifty dollars to euros.",
    "Give me a recipe for chocolate chip cookies.", "Find the nearest gas station.",
    "Show me pictures of the Eiffel tower.",
    "Turn on the living room fan.", "Lock the front door.", "Dim the bedroom lights to thirty percent.",
    "Start a workout playlist.", "Repeat that, please.", "Say that again.", "Please speak more slowly.",
    "Tell me the news headlines.", "Calculate the tip on eighty five dollars.", "Describe what you see on the camera.",
    "Navigate to the nearest hospital.", "Order more paper towels.", "Book a table for two at eight.",
    "Note that the plumber comes on Tuesday.", "Write a short poem about autumn.", "Check my bank balance.",
    "Search for flights to Chicago.", "Make the text bigger.", "Mute the television.", "Keep going.",
    "Continue with the recipe.", "Go back to the previous step.", "Suggest a movie for tonight.",
    "Compare the iPhone and the Pixel.", "Count down from ten.", "Sing happy birthday.",
    "Let me know when the laundry is done.", "Remind me to water the plants every Sunday.",
    "Turn the heating off when I leave.", "Help me plan a trip to Rome.", "Recommend a podcast about history.",
    "List the planets in order.", "Shuffle my favorites playlist.", "Please set an alarm for six thirty.",
    "Tell me something interesting.", "Switch to the news channel.", "Record a voice memo.",
    "Delete the last reminder.", "Change the lights to blue.", "Brighten the screen.",
    "I need a timer for the pasta.", "I want to hear some classical music.",
    "Hey, look up the opening hours of the library.",
    "Okay, now tell me the weather in Paris.", "So what's the plan for today?", "And how long will that take?",
]

OTHER_ADDRESSED = [
    # declarative statements, narration, self-talk
    "I'll be home by six.", "The meeting went really well today.", "I think I left the oven on.",
    "We should paint the fence this summer.", "My sister is coming over on Saturday.", "It's been raining all week.",
    "The kids had a great time at the park.", "I can't believe how expensive groceries are now.",
    "This coffee is way too hot.", "I finally finished that book last night.", "We ran out of toothpaste again.",
    "The train was twenty minutes late this morning.", "I don't really like horror movies.",
    "That was the best pizza I've had in years.", "My back has been hurting since Tuesday.",
    "The neighbors got a new puppy.", "I'm going to take a nap.", "He said he would fix it tomorrow.",
    "She's been working from home lately.", "The garden looks amazing this year.", "I need to buy new shoes.",
    "Our flight leaves at noon.", "The printer is jammed again.", "It smells like someone is baking bread.",
    "I forgot my password again.", "The game starts in ten minutes.", "We had pasta for dinner yesterday.",
    "Tom is bringing the salad.", "The car needs an oil change.", "I've been meaning to call grandma.",
    "This song reminds me of college.", "The store was completely out of eggs.", "Work has been crazy this month.",
    "I'll grab the mail on my way in.", "The baby finally fell asleep.", "My phone battery is almost dead.",
    "They're repaving the road outside.", "I made a reservation for Friday.", "Honestly, the ending was a bit weird.",
    "The cat knocked over the plant again.", "Let's see, where did I put that.",
    "Okay, so first the flour, then the eggs.",
    "Now where are my glasses.", "Oh no, I spilled the juice.", "Hmm, that's strange, the light is off.",
    "I wonder if the package arrived.", "We're going to be late for the movie.", "The soup needs more salt.",
    "My favorite color has always been green.", "The dog needs a walk soon.", "I'm so tired after that run.",
    "The report is due on Monday.", "It was nice seeing you yesterday.", "The heater is making that noise again.",
    "We won the quiz last night.", "I hope the weather holds up for the picnic.", "This chair is really uncomfortable.",
    "My brother just got engaged.", "The tomatoes are finally ripe.", "I really should clean the fridge.",
    # questions and requests to another person
    "Honey, did you feed the cat?", "Mom, where are my soccer shoes?", "Guys, dinner is ready.",
    "Sweetie, can you grab the door?", "Dad, can I borrow the car tonight?", "Kids, brush your teeth.",
    "John, are you coming with us?", "Babe, have you seen my keys?", "Did you call the plumber yet?",
    "Are you done in the bathroom?", "Can you pass me the salt?", "Do you want tea or coffee?",
    "Where did you put the remote?", "What did the doctor say?", "How was school today, buddy?",
    "Could you pick up some bread on the way home?", "Sarah, your phone is ringing.", "Hey Mike, how's it going?",
    "Grandma, do you want more potatoes?", "Are we still going to the beach tomorrow?",
    "Did you lock the back door?", "What time is your train, dear?", "Can you help me carry these bags?",
    "Emma, turn that down, please.", "Kids, stop fighting.", "Is that your jacket on the chair?",
    "Do you want to watch a movie later?", "Tell your brother dinner is ready.", "Who finished the milk?",
    "Why didn't you call me back?", "Have you fed the dog, love?", "You have to try this cake.",
    "Hold on, I'm on the phone.", "Thanks for picking me up.", "Wait for me, I'm almost ready.",
    "Sorry, I didn't catch that, what did you say to her?", "See you tomorrow.", "Good night, everyone.",
    "Happy birthday, Lisa.", "Nice to meet you.",
]

BACKCHANNELS = [
    "Uh-huh.", "Mm-hmm.", "Yeah.", "Right.", "Okay.", "I see.", "Sure.", "Got it.", "Oh, okay.", "Yeah, yeah.",
    "Hmm.", "Oh.", "Wow.", "Right, right.", "Exactly.", "Oh, I see.", "Cool.", "Alright.", "Makes sense.",
    "Interesting.", "Oh really?", "Yep.", "Okay, okay.", "Mhm.", "That's right.", "True.", "Nice.",
    "Oh wow.", "Uh-huh, yeah.", "Thank you.",
]

ANSWERS = [  # what the assistant says; heard back as echo while it speaks
    "The capital of Australia is Canberra. Many people guess Sydney, but Canberra was chosen as a compromise.",
    "It is currently twenty two degrees and sunny. Later this afternoon clouds will move in from the west.",
    "Sure, I have set a timer for ten minutes. I will let you know when it is done.",
    "Photosynthesis is how plants turn light into energy. They take in carbon dioxide and release oxygen.",
    "Here is a joke for you. Why did the scarecrow win an award? Because he was outstanding in his field.",
    "The moon is about three hundred eighty four thousand kilometers away. "
    "Light takes just over a second to get there.",
    "To boil an egg, put it in boiling water for about nine minutes. Then cool it in cold water before peeling.",
    "Your next appointment is on Thursday at ten. It is with doctor Green at the downtown clinic.",
    "Pride and Prejudice was written by Jane Austen. It was first published in eighteen thirteen.",
    "The Berlin wall fell in nineteen eighty nine. It had divided the city for twenty eight years.",
    "I found three Italian restaurants nearby. The closest one is about five minutes away on foot.",
    "Vaccines train your immune system. They show it a harmless piece of a germ so it can react faster later.",
    "The speed of light is about three hundred thousand kilometers per second. Nothing with mass can reach it.",
    "I am sorry, I could not find that file. Would you like me to search somewhere else?",
    "Mount Everest is eight thousand eight hundred forty nine meters tall. It sits on the border of Nepal and China.",
    "Your shopping list now has milk, eggs and bread. Do you want to add anything else?",
    "The store closes at nine tonight. On Sundays it closes earlier, at six.",
    "Cats purr when they are content, but also when they are stressed. Scientists are still studying why.",
    "The sky looks blue because air scatters blue light more than red light. This is called Rayleigh scattering.",
    "In Japanese, thank you is arigato. A more polite form is arigato gozaimasu.",
]

CONTROLS = ["Stop.", "Pause.", "Never mind.", "Louder.", "Cancel."]  # bare controls, most useful as barge-ins

REPLY_QUESTIONS = [
    "Shall I set a timer for ten minutes?", "Would you like me to read the rest?",
    "Do you want me to add it to the list?",
    "Should I call him now?", "Which one do you mean, the red one or the blue one?", "When should I remind you?",
]
REPLIES = [
    "Yes, please.", "No thanks.", "Yes.", "No.", "Sure.", "Go ahead.", "Not now.", "Please do.",
    "The blue one.", "Tomorrow morning.", "At nine o'clock.", "Twenty minutes.", "Yeah, sure.", "The second one.",
]

VOICES = ("piper:joe", "espeak:en-us", "espeak:en-gb+f3")
